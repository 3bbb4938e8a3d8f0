//! LIVE sessions and short videos, generated per shop from the seed, and the orders they
//! drive.
//!
//! - A shop goes LIVE every third day at about 19:00 shop-local for 1–2.5 hours. An order
//!   placed during a session is attributed to it with probability 45% (its line items carry
//!   the session's `room_id`, as on the real API).
//! - A shop posts a video on about 60% of days, featuring one of its products. A video's
//!   views decay by 45% a day for 14 days. An order not attributed to a LIVE is attributed,
//!   with probability 12%, to the shop's latest video posted in the 7 days before it (the
//!   API does not show this on the order; the video reports count it).
//!
//! Attribution is a pure function of the order id, so every endpoint and the truth agree.

use chrono::{Datelike, NaiveDate};

use super::data::{Order, Product, Shop, local_date, local_midnight};
use super::rng::Rng;

/// A LIVE session.
#[derive(Debug, Clone)]
pub struct LiveSession {
    /// Session (room) id.
    pub id: String,
    /// Shop index.
    pub shop: usize,
    /// Start and end (unix seconds).
    pub start: i64,
    /// End.
    pub end: i64,
    /// Title.
    pub title: String,
    /// Concurrent viewers at the peak.
    pub peak_viewers: u64,
    salt: u64,
}

impl LiveSession {
    /// Minutes the session lasts.
    pub fn minutes(&self) -> i64 {
        (self.end - self.start) / 60
    }

    /// Concurrent viewers in minute `m`: a ramp over the first 15%, a noisy plateau,
    /// and a fade to 40% over the last 20%.
    pub fn viewers(&self, m: i64) -> u64 {
        let n = self.minutes().max(1) as f64;
        let x = m as f64 / n;
        let shape = if x < 0.15 {
            0.2 + 0.8 * x / 0.15
        } else if x > 0.8 {
            1.0 - 0.6 * (x - 0.8) / 0.2
        } else {
            let mut r = Rng::new(self.salt, m as u64);
            0.85 + 0.15 * r.f64()
        };
        (self.peak_viewers as f64 * shape.min(1.0)).round() as u64
    }

    /// (likes, comments, new followers) in minute `m`, from its viewers.
    pub fn engagement(&self, m: i64) -> (u64, u64, u64) {
        let v = self.viewers(m);
        let mut r = Rng::new(self.salt ^ 0x454E_4741, m as u64);
        (
            (v as f64 * (0.05 + 0.05 * r.f64())) as u64,
            (v as f64 * (0.005 + 0.01 * r.f64())) as u64,
            (v as f64 * 0.002 * r.f64()).round() as u64,
        )
    }
}

/// A short video.
#[derive(Debug, Clone)]
pub struct Video {
    /// Video id.
    pub id: String,
    /// Shop index.
    pub shop: usize,
    /// Posted (unix seconds).
    pub post_time: i64,
    /// Seconds.
    pub duration: u32,
    /// Title.
    pub title: String,
    /// Featured product (index into the products).
    pub product: u32,
    /// Views on the day it was posted.
    pub first_day_views: u64,
    salt: u64,
}

/// Days a video keeps getting views.
pub const VIDEO_DAYS: i64 = 14;

impl Video {
    /// The shop-local day it was posted.
    pub fn post_date(&self, shop: &Shop) -> NaiveDate {
        local_date(shop.region, self.post_time)
    }

    /// (views, likes, comments, shares) on shop-local `day`.
    pub fn day(&self, shop: &Shop, day: NaiveDate) -> (u64, u64, u64, u64) {
        let age = (day - self.post_date(shop)).num_days();
        if !(0..VIDEO_DAYS).contains(&age) {
            return (0, 0, 0, 0);
        }
        let views = (self.first_day_views as f64 * 0.55f64.powi(age as i32)).round() as u64;
        let mut r = Rng::new(self.salt, age as u64);
        (
            views,
            (views as f64 * (0.04 + 0.04 * r.f64())) as u64,
            (views as f64 * (0.003 + 0.004 * r.f64())) as u64,
            (views as f64 * (0.001 + 0.003 * r.f64())) as u64,
        )
    }
}

/// Every shop's sessions and videos, each sorted by time.
#[derive(Debug, Default)]
pub struct Content {
    /// Per shop.
    pub lives: Vec<Vec<LiveSession>>,
    /// Per shop.
    pub videos: Vec<Vec<Video>>,
}

/// Probability that an order placed during a LIVE came from it.
const LIVE_SHARE: f64 = 0.45;
/// Probability that another order came from the shop's latest video.
const VIDEO_SHARE: f64 = 0.12;

impl Content {
    /// Sessions and videos from `first` (unix) to `last` for every shop.
    pub fn generate(
        seed: u64,
        shops: &[Shop],
        products: &[Product],
        first: i64,
        last: i64,
    ) -> Content {
        let mut c = Content::default();
        for (si, shop) in shops.iter().enumerate() {
            let mut r = Rng::new(seed ^ 0x4C49_5645, si as u64);
            let own: Vec<u32> = products
                .iter()
                .enumerate()
                .filter(|(_, p)| p.shop == si)
                .map(|(i, _)| i as u32)
                .collect();
            let (mut lives, mut videos) = (Vec::new(), Vec::new());
            let mut day = local_date(shop.region, first);
            let end = local_date(shop.region, last);
            while day <= end {
                let midnight = local_midnight(shop.region, day);
                if (day.num_days_from_ce() as usize + si).is_multiple_of(3) {
                    let start = midnight + 19 * 3600 + r.range(0, 60) * 60;
                    let minutes = r.range(60, 151);
                    lives.push(LiveSession {
                        id: format!("73{:017}", r.range(0, 99_999_999_999_999_999)),
                        shop: si,
                        start,
                        end: start + minutes * 60,
                        title: format!("{} LIVE {}", shop.name, day.format("%b %-d")),
                        peak_viewers: r.range(150, 2500) as u64,
                        salt: seed ^ r.range(0, i64::MAX) as u64,
                    });
                }
                if !own.is_empty() && r.chance(0.6) {
                    let product = own[r.range(0, own.len() as i64) as usize];
                    videos.push(Video {
                        id: format!("74{:017}", r.range(0, 99_999_999_999_999_999)),
                        shop: si,
                        post_time: midnight + r.range(9 * 3600, 22 * 3600),
                        duration: r.range(15, 61) as u32,
                        title: format!("{} — honest review", products[product as usize].title),
                        product,
                        first_day_views: r.range(500, 20_000) as u64,
                        salt: seed ^ r.range(0, i64::MAX) as u64,
                    });
                }
                day = day.succ_opt().expect("date");
            }
            c.lives.push(lives);
            c.videos.push(videos);
        }
        c
    }

    /// The LIVE session `o` was placed in and came from, if any.
    pub fn live_of(&self, seed: u64, o: &Order) -> Option<&LiveSession> {
        let lives = self.lives.get(o.shop as usize)?;
        let i = lives.partition_point(|s| s.start <= o.ev.create);
        let s = lives.get(i.checked_sub(1)?)?;
        (o.ev.create < s.end && Rng::new(seed ^ 0x524F_4F4D, o.id).chance(LIVE_SHARE)).then_some(s)
    }

    /// The video `o` came from, if any (never together with a LIVE).
    pub fn video_of(&self, seed: u64, o: &Order) -> Option<&Video> {
        if self.live_of(seed, o).is_some() {
            return None;
        }
        let videos = self.videos.get(o.shop as usize)?;
        let i = videos.partition_point(|v| v.post_time <= o.ev.create);
        let v = videos.get(i.checked_sub(1)?)?;
        (o.ev.create - v.post_time < 7 * 86_400
            && Rng::new(seed ^ 0x5649_4445, o.id).chance(VIDEO_SHARE))
        .then_some(v)
    }
}

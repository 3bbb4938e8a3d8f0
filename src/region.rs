//! Region → currency and time zone. The TikTok API returns a shop's region but no time zone,
//! so shop-local dates come from this table (overridable per shop in config by later stages).
//! Shared by the sandbox (to generate local-time seasonality) and the pipeline (local dates).

use chrono_tz::Tz;

/// What shoplake knows about a TikTok Shop selling region.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Region {
    /// Two-letter region code as the API returns it (`US`, `GB`, …).
    pub code: &'static str,
    /// ISO-4217 currency of the shop's local amounts.
    pub currency: &'static str,
    /// IANA time zone used for shop-local dates (Seller Center reports US in Pacific time).
    pub tz: Tz,
    /// Digits after the decimal point in amounts (`IDR`/`VND` have none).
    pub minor_digits: u32,
    /// Approximate local units per USD, used only by the sandbox to price the catalog.
    pub usd_rate: f64,
    /// Smallest price step the sandbox rounds local prices to, in minor units.
    pub price_step: i64,
}

/// Regions in the order the sandbox assigns them to shops.
pub const REGIONS: &[Region] = &[
    Region {
        code: "US",
        currency: "USD",
        tz: Tz::America__Los_Angeles,
        minor_digits: 2,
        usd_rate: 1.0,
        price_step: 1,
    },
    Region {
        code: "GB",
        currency: "GBP",
        tz: Tz::Europe__London,
        minor_digits: 2,
        usd_rate: 0.79,
        price_step: 1,
    },
    Region {
        code: "ID",
        currency: "IDR",
        tz: Tz::Asia__Jakarta,
        minor_digits: 0,
        usd_rate: 15800.0,
        price_step: 100,
    },
    Region {
        code: "TH",
        currency: "THB",
        tz: Tz::Asia__Bangkok,
        minor_digits: 2,
        usd_rate: 35.0,
        price_step: 100,
    },
    Region {
        code: "VN",
        currency: "VND",
        tz: Tz::Asia__Ho_Chi_Minh,
        minor_digits: 0,
        usd_rate: 25000.0,
        price_step: 1000,
    },
    Region {
        code: "MY",
        currency: "MYR",
        tz: Tz::Asia__Kuala_Lumpur,
        minor_digits: 2,
        usd_rate: 4.6,
        price_step: 10,
    },
    Region {
        code: "SG",
        currency: "SGD",
        tz: Tz::Asia__Singapore,
        minor_digits: 2,
        usd_rate: 1.35,
        price_step: 1,
    },
    Region {
        code: "PH",
        currency: "PHP",
        tz: Tz::Asia__Manila,
        minor_digits: 2,
        usd_rate: 56.0,
        price_step: 100,
    },
];

/// Looks a region up by its code (case-insensitive).
pub fn region(code: &str) -> Option<&'static Region> {
    REGIONS.iter().find(|r| r.code.eq_ignore_ascii_case(code))
}

/// Formats an amount in minor units as the API's decimal string (`"29.99"`, `"459000"`).
pub fn format_minor(minor: i64, digits: u32) -> String {
    if digits == 0 {
        return minor.to_string();
    }
    let scale = 10i64.pow(digits);
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    format!(
        "{sign}{}.{:0width$}",
        abs / scale as u64,
        abs % scale as u64,
        width = digits as usize
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_minor_units() {
        assert_eq!(format_minor(2999, 2), "29.99");
        assert_eq!(format_minor(5, 2), "0.05");
        assert_eq!(format_minor(-150, 2), "-1.50");
        assert_eq!(format_minor(459000, 0), "459000");
    }

    #[test]
    fn looks_up_regions() {
        assert_eq!(region("gb").unwrap().tz, Tz::Europe__London);
        assert!(region("XX").is_none());
    }
}

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

/// An amount in minor units that formats as the API's decimal string (`"29.99"`,
/// `"459000"`) without allocating; serializes as a JSON string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Minor {
    /// Amount in minor units (cents, or whole units for zero-digit currencies).
    pub minor: i64,
    /// Digits after the decimal point.
    pub digits: u32,
}

impl std::fmt::Display for Minor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.digits == 0 {
            return write!(f, "{}", self.minor);
        }
        let scale = 10u64.pow(self.digits);
        let sign = if self.minor < 0 { "-" } else { "" };
        let abs = self.minor.unsigned_abs();
        write!(
            f,
            "{sign}{}.{:0width$}",
            abs / scale,
            abs % scale,
            width = self.digits as usize
        )
    }
}

impl Minor {
    /// Writes the decimal string into `buf` without `fmt` machinery; returns its length.
    pub fn write_to(&self, buf: &mut [u8; 48]) -> usize {
        let mut digits = [0u8; 24];
        let mut abs = self.minor.unsigned_abs();
        let mut n = 0;
        loop {
            digits[n] = b'0' + (abs % 10) as u8;
            abs /= 10;
            n += 1;
            if abs == 0 && n as u32 > self.digits {
                break;
            }
        }
        let mut len = 0;
        if self.minor < 0 {
            buf[0] = b'-';
            len = 1;
        }
        for i in (0..n).rev() {
            if self.digits > 0 && i + 1 == self.digits as usize {
                buf[len] = b'.';
                len += 1;
            }
            buf[len] = digits[i];
            len += 1;
        }
        len
    }
}

impl serde::Serialize for Minor {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 48];
        let len = self.write_to(&mut buf);
        s.serialize_str(std::str::from_utf8(&buf[..len]).unwrap_or_default())
    }
}

/// Formats an amount in minor units as the API's decimal string (`"29.99"`, `"459000"`).
pub fn format_minor(minor: i64, digits: u32) -> String {
    Minor { minor, digits }.to_string()
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
        for (m, d) in [
            (2999, 2),
            (5, 2),
            (-150, 2),
            (0, 2),
            (459000, 0),
            (0, 0),
            (-7, 0),
            (123456, 3),
        ] {
            let mut buf = [0u8; 48];
            let len = Minor {
                minor: m,
                digits: d,
            }
            .write_to(&mut buf);
            assert_eq!(
                std::str::from_utf8(&buf[..len]).unwrap(),
                format_minor(m, d)
            );
        }
    }

    #[test]
    fn looks_up_regions() {
        assert_eq!(region("gb").unwrap().tz, Tz::Europe__London);
        assert!(region("XX").is_none());
    }
}

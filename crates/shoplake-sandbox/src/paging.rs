//! Pagination as the sandbox serves it: opaque `page_token`s (202309+ endpoints) and
//! 1-based `page_number` (legacy endpoints), over a range of an index with a per-row filter.
//! A page costs O(page_size + log n): the token remembers where the walk stopped and the
//! total, so nothing is rescanned.

use base64::Engine;

use super::gate::ApiFault;

/// Where a token-paginated walk stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageToken {
    /// Hash of the query the token belongs to (a token is not valid for another query).
    pub fingerprint: u64,
    /// Next position in the candidate range.
    pub pos: u32,
    /// Total matching rows (computed on the first page).
    pub total: u32,
}

impl PageToken {
    /// Standard base64, so tokens contain `+` and `/` like the real ones.
    pub fn encode(&self) -> String {
        let mut b = [0u8; 17];
        b[0] = 0xA7; // format tag
        b[1..9].copy_from_slice(&self.fingerprint.to_be_bytes());
        b[9..13].copy_from_slice(&self.pos.to_be_bytes());
        b[13..17].copy_from_slice(&self.total.to_be_bytes());
        base64::engine::general_purpose::STANDARD.encode(b)
    }

    /// Decodes a token sent back by a client for the query with `fingerprint`.
    pub fn decode(s: &str, fingerprint: u64) -> Result<PageToken, ApiFault> {
        let bad = || ApiFault::param("page_token is invalid or does not belong to this query");
        let b = base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(|_| bad())?;
        if b.len() != 17 || b[0] != 0xA7 {
            return Err(bad());
        }
        let t = PageToken {
            fingerprint: u64::from_be_bytes(b[1..9].try_into().map_err(|_| bad())?),
            pos: u32::from_be_bytes(b[9..13].try_into().map_err(|_| bad())?),
            total: u32::from_be_bytes(b[13..17].try_into().map_err(|_| bad())?),
        };
        if t.fingerprint != fingerprint {
            return Err(bad());
        }
        Ok(t)
    }
}

/// `token` moved back by up to `rows` positions (the same query, an earlier start), or
/// `None` when it is not a page token or already at the start.
pub fn rewind(token: &str, rows: u32) -> Option<String> {
    let b = base64::engine::general_purpose::STANDARD
        .decode(token)
        .ok()?;
    if b.len() != 17 || b[0] != 0xA7 {
        return None;
    }
    let t = PageToken {
        fingerprint: u64::from_be_bytes(b[1..9].try_into().ok()?),
        pos: u32::from_be_bytes(b[9..13].try_into().ok()?),
        total: u32::from_be_bytes(b[13..17].try_into().ok()?),
    };
    (t.pos > 0).then(|| {
        PageToken {
            pos: t.pos.saturating_sub(rows),
            ..t
        }
        .encode()
    })
}

/// One token page over `rows` (a list the handler built for this call), `page_size` in
/// 1..=`max`. The token is bound to the call: `what`, the shop, the body, the path
/// parameters and the business query parameters (not paging, signing or credentials).
pub fn list_page<T: Copy>(
    ctx: &super::Ctx,
    what: &[u8],
    max: usize,
    rows: &[T],
) -> Result<(Vec<T>, String, u32), ApiFault> {
    const NOT_BUSINESS: &[&str] = &[
        "page_token",
        "page_size",
        "timestamp",
        "sign",
        "app_key",
        "shop_cipher",
        "category_asset_cipher",
        "access_token",
    ];
    let size = page_size(ctx.q("page_size"), max)?;
    let params: std::collections::BTreeMap<_, _> = ctx.params.iter().collect();
    let mut query: Vec<_> = ctx
        .query
        .iter()
        .filter(|(k, _)| !NOT_BUSINESS.contains(&k.as_str()))
        .collect();
    query.sort();
    let key = format!("{:?}{params:?}{query:?}", ctx.shop);
    let fp = fingerprint(&[what, &ctx.body, key.as_bytes()]);
    token_page(ctx.q("page_token"), fp, rows, false, size, |_| true)
}

/// FNV-1a over the parts of a query that define its result set.
pub fn fingerprint(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in *p {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Reads and checks `page_size` (required, `1..=max`).
pub fn page_size(value: Option<&str>, max: usize) -> Result<usize, ApiFault> {
    let v = value.ok_or_else(|| ApiFault::param("page_size is required"))?;
    match v.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(ApiFault::param(format_args!(
            "page_size must be between 1 and {max}, got {v:?}"
        ))),
    }
}

/// One page of a walk.
#[derive(Debug)]
pub struct Walked<T> {
    /// Rows on this page.
    pub rows: Vec<T>,
    /// Position to continue from, if rows remain.
    pub next: Option<u32>,
    /// Total matching rows.
    pub total: u32,
}

/// Walks `range` (in `descending` order when asked) from `pos`, keeping rows that pass
/// `keep`, until `size` rows are collected. `total` is counted when not given.
pub fn walk<T: Copy>(
    range: &[T],
    descending: bool,
    pos: u32,
    size: usize,
    total: Option<u32>,
    keep: impl Fn(T) -> bool,
) -> Walked<T> {
    let n = range.len();
    let at = |i: usize| {
        if descending {
            range[n - 1 - i]
        } else {
            range[i]
        }
    };
    let total = total.unwrap_or_else(|| range.iter().filter(|&&t| keep(t)).count() as u32);
    let mut rows = Vec::with_capacity(size);
    let mut i = pos as usize;
    while i < n && rows.len() < size {
        let t = at(i);
        if keep(t) {
            rows.push(t);
        }
        i += 1;
    }
    // Skip trailing non-matching rows so the last page does not hand out an empty follow-up.
    while i < n && !keep(at(i)) {
        i += 1;
    }
    Walked {
        rows,
        next: (i < n).then_some(i as u32),
        total,
    }
}

/// One token-style page: decodes the client's `page_token` (if any), walks, and encodes
/// the next token (empty on the last page, like the real API).
pub fn token_page<T: Copy>(
    page_token: Option<&str>,
    fingerprint: u64,
    range: &[T],
    descending: bool,
    size: usize,
    keep: impl Fn(T) -> bool,
) -> Result<(Vec<T>, String, u32), ApiFault> {
    let token = match page_token.filter(|t| !t.is_empty()) {
        Some(t) => Some(PageToken::decode(t, fingerprint)?),
        None => None,
    };
    if super::realism::OFFSET_PAGES.with(|f| f.get()) {
        return Ok(offset_page(
            fingerprint,
            range,
            descending,
            token.map_or(0, |t| t.pos),
            size.min(super::realism::SHIFTING_PAGE_ROWS),
            keep,
        ));
    }
    let w = walk(
        range,
        descending,
        token.map_or(0, |t| t.pos),
        size,
        token.map(|t| t.total),
        keep,
    );
    let next = w
        .next
        .map(|pos| {
            PageToken {
                fingerprint,
                pos,
                total: w.total,
            }
            .encode()
        })
        .unwrap_or_default();
    Ok((w.rows, next, w.total))
}

/// A page under `Realism::shifting_pages`: `offset` counts matching rows of the list as
/// it is now (rows that left it since the last page shift the rest back), and the total
/// is counted again.
fn offset_page<T: Copy>(
    fingerprint: u64,
    range: &[T],
    descending: bool,
    offset: u32,
    size: usize,
    keep: impl Fn(T) -> bool,
) -> (Vec<T>, String, u32) {
    let matching: Vec<T> = if descending {
        range.iter().rev().copied().filter(|&t| keep(t)).collect()
    } else {
        range.iter().copied().filter(|&t| keep(t)).collect()
    };
    let total = matching.len() as u32;
    let start = (offset as usize).min(matching.len());
    let end = (start + size).min(matching.len());
    let next = if end < matching.len() {
        PageToken {
            fingerprint,
            pos: end as u32,
            total,
        }
        .encode()
    } else {
        String::new()
    };
    (matching[start..end].to_vec(), next, total)
}

/// The slice of `len` matching rows that 1-based `page_number` of `size` covers.
pub fn number_page(
    len: usize,
    page_number: Option<u32>,
    size: usize,
) -> Result<std::ops::Range<usize>, ApiFault> {
    let number = page_number.unwrap_or(1);
    if number == 0 {
        return Err(ApiFault::param("page_number starts at 1"));
    }
    let start = ((number - 1) as usize).saturating_mul(size).min(len);
    Ok(start..(start + size).min(len))
}

/// The part of a time-sorted index `[(time, row)]` with `ge <= time < lt`.
pub fn time_range(index: &[(i64, u32)], ge: Option<i64>, lt: Option<i64>) -> &[(i64, u32)] {
    let lo = ge.map_or(0, |g| index.partition_point(|&(t, _)| t < g));
    let hi = lt.map_or(index.len(), |l| index.partition_point(|&(t, _)| t < l));
    &index[lo..hi.max(lo)]
}

/// The body of one page of a token-paged list: `next_page_token`, `total_count` and the
/// records under `field` (e.g. `packages`).
pub fn page_json<T: serde::Serialize>(
    field: &str,
    next_page_token: String,
    total_count: u32,
    records: &[T],
) -> Vec<u8> {
    use serde::ser::SerializeMap;
    struct Body<'a, T> {
        field: &'a str,
        next: String,
        total: u32,
        records: &'a [T],
    }
    impl<T: serde::Serialize> serde::Serialize for Body<'_, T> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut m = s.serialize_map(Some(3))?;
            m.serialize_entry("next_page_token", &self.next)?;
            m.serialize_entry("total_count", &self.total)?;
            m.serialize_entry(self.field, self.records)?;
            m.end()
        }
    }
    serde_json::to_vec(&Body {
        field,
        next: next_page_token,
        total: total_count,
        records,
    })
    .expect("serializable")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_roundtrip_and_rejects_other_queries() {
        let t = PageToken {
            fingerprint: 42,
            pos: 100,
            total: 1000,
        };
        let s = t.encode();
        assert_eq!(PageToken::decode(&s, 42).unwrap(), t);
        assert!(PageToken::decode(&s, 43).is_err());
        assert!(PageToken::decode("nope", 42).is_err());
    }

    #[test]
    fn walks_every_matching_row_once() {
        let data: Vec<u32> = (0..103).collect();
        for desc in [false, true] {
            let mut seen = Vec::new();
            let mut pos = 0;
            loop {
                let w = walk(&data, desc, pos, 10, None, |x| x % 3 != 0);
                assert_eq!(w.total, 68);
                seen.extend(w.rows);
                match w.next {
                    Some(p) => pos = p,
                    None => break,
                }
            }
            seen.sort();
            let want: Vec<u32> = data.iter().copied().filter(|x| x % 3 != 0).collect();
            assert_eq!(seen, want);
        }
    }

    #[test]
    fn page_numbers_are_one_based() {
        assert_eq!(number_page(25, None, 10).unwrap(), 0..10);
        assert_eq!(number_page(25, Some(3), 10).unwrap(), 20..25);
        assert_eq!(number_page(25, Some(4), 10).unwrap(), 25..25);
        assert!(number_page(25, Some(0), 10).is_err());
    }

    #[test]
    fn page_size_bounds() {
        assert_eq!(page_size(Some("100"), 100).unwrap(), 100);
        assert!(page_size(Some("101"), 100).is_err());
        assert!(page_size(Some("0"), 100).is_err());
        assert!(page_size(None, 100).is_err());
    }
}

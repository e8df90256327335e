//! A run's shard: which contiguous slice of its units this machine does.

/// `--shard I/N`: the I-th of N contiguous, nearly equal slices of a run's
/// units (images in input order, groups of frames), so N machines split a
/// job deterministically.
/// A shard read from a file (`job.json`) is checked as `--shard` is:
/// a merge indexes its coverage table by `index` and divides by `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "RawShard")]
pub struct Shard {
    /// This shard's index, 0-based.
    pub index: usize,
    /// Shards in all.
    pub count: usize,
}

#[derive(serde::Deserialize)]
struct RawShard {
    index: usize,
    count: usize,
}

impl TryFrom<RawShard> for Shard {
    type Error = String;
    fn try_from(r: RawShard) -> std::result::Result<Self, String> {
        if r.count == 0 || r.count > crate::limits::MAX_SHARDS || r.index >= r.count {
            return Err(format!(
                "shard {}/{} is not a shard: it needs 0 ≤ index < count ≤ {}",
                r.index,
                r.count,
                crate::limits::MAX_SHARDS
            ));
        }
        Ok(Shard { index: r.index, count: r.count })
    }
}

impl Shard {
    /// The whole job: shard 0 of 1.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// The units of this shard among `len`.
    pub fn range(&self, len: usize) -> std::ops::Range<usize> {
        let at = |i: usize| ((i as u128 * len as u128) / self.count as u128) as usize;
        at(self.index)..at(self.index + 1)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let bad = || format!("--shard wants I/N with 0 ≤ I < N ≤ {}, not {s:?}", crate::limits::MAX_SHARDS);
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) =
            (i.trim().parse::<usize>().map_err(|_| bad())?, n.trim().parse::<usize>().map_err(|_| bad())?);
        if count == 0 || count > crate::limits::MAX_SHARDS || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_every_unit_once() {
        for len in [0usize, 1, 7, 100] {
            for n in 1..=9 {
                let mut all = vec![];
                for i in 0..n {
                    all.extend(Shard { index: i, count: n }.range(len));
                }
                assert_eq!(all, (0..len).collect::<Vec<_>>(), "len {len} n {n}");
            }
        }
        assert_eq!("2/5".parse::<Shard>(), Ok(Shard { index: 2, count: 5 }));
        for bad in ["5/5", "1/0", "x/2", "3", "-1/4"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        // From a file too (found by fuzzing `refine merge`: index 3 of 2 indexed past the coverage table).
        assert_eq!(serde_json::from_str::<Shard>(r#"{"index": 1, "count": 2}"#).unwrap(), Shard { index: 1, count: 2 });
        for bad in [r#"{"index": 3, "count": 2}"#, r#"{"index": 0, "count": 0}"#, r#"{"index": 0, "count": 100001}"#] {
            assert!(serde_json::from_str::<Shard>(bad).unwrap_err().to_string().contains("is not a shard"), "{bad}");
        }
    }
}

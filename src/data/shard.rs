//! One scoring job split over several processes or machines: `lamp score --shard I/N` scores the
//! I-th of N contiguous parts of its inputs sorted by path, and `lamp merge` puts the parts'
//! records back in that order, so N shards merged equal one run over everything.
//!
//! The index can come from the batch system: a Kubernetes Indexed Job sets
//! `JOB_COMPLETION_INDEX` (0 … completions − 1), a Slurm job array sets `SLURM_ARRAY_TASK_ID`
//! (from `SLURM_ARRAY_TASK_MIN`, often 0 or 1).

use crate::error::{Error, Result};
use std::ops::Range;
use std::path::PathBuf;

/// The environment variables `--shard auto/N` reads, in order.
pub const KUBERNETES_INDEX: &str = "JOB_COMPLETION_INDEX";
pub const SLURM_INDEX: &str = "SLURM_ARRAY_TASK_ID";
pub const SLURM_MIN: &str = "SLURM_ARRAY_TASK_MIN";

/// Part `index` (from 0) of `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

/// `--shard` as written: the index given, or `auto` (from the batch system's environment).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShardSpec {
    Given(Shard),
    Auto { count: usize },
}

/// Most parts a job may be split into (a guard against a typo such as `0/40000000000`).
pub const MAX_SHARDS: usize = 1 << 20;

impl ShardSpec {
    /// Parses `I/N` or `auto/N` (I from 0 to N − 1).
    pub fn parse(s: &str) -> std::result::Result<ShardSpec, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not I/N (e.g. 0/4, or auto/4)"))?;
        let count = whole(n).map_err(|huge| match huge {
            true => format!("the number of shards {n:?} is too large (at most {MAX_SHARDS})"),
            false => format!("the number of shards {n:?} is not a whole number"),
        })?;
        if count == 0 || count > MAX_SHARDS {
            return Err(format!(
                "the number of shards must be from 1 to {MAX_SHARDS}, got {count}"
            ));
        }
        if i.trim() == "auto" {
            return Ok(ShardSpec::Auto { count });
        }
        let index = whole(i).map_err(|huge| match huge {
            true => format!("the shard index {i:?} is not below the number of shards {count}"),
            false => format!("the shard index {i:?} is not a whole number or auto"),
        })?;
        Shard::new(index, count).map(ShardSpec::Given)
    }

    /// The shard, with `auto` read through `env` (the process environment in use).
    pub fn resolve(self, env: impl Fn(&str) -> Option<String>) -> Result<Shard> {
        let count = match self {
            ShardSpec::Given(s) => return Ok(s),
            ShardSpec::Auto { count } => count,
        };
        let number = |name: &str| -> Result<Option<usize>> {
            match env(name) {
                None => Ok(None),
                Some(v) => v.trim().parse().map(Some).map_err(|_| {
                    Error::setting("shard", format!("auto: {name}={v:?} is not a whole number"))
                }),
            }
        };
        let index = if let Some(k) = number(KUBERNETES_INDEX)? {
            k
        } else if let Some(id) = number(SLURM_INDEX)? {
            let min = number(SLURM_MIN)?.unwrap_or(0);
            id.checked_sub(min).ok_or_else(|| {
                Error::setting(
                    "shard",
                    format!("auto: {SLURM_INDEX}={id} is below {SLURM_MIN}={min}"),
                )
            })?
        } else {
            return Err(Error::setting(
                "shard",
                format!(
                    "auto needs {KUBERNETES_INDEX} (a Kubernetes Indexed Job) or {SLURM_INDEX} \
                     (a Slurm job array) in the environment; neither is set"
                ),
            ));
        };
        Shard::new(index, count).map_err(|m| Error::setting("shard", format!("auto: {m}")))
    }
}

/// `text` as a count: `Err(true)` where it is a whole number too large for one (named as such,
/// not as "not a number"), `Err(false)` where it is no whole number.
fn whole(text: &str) -> std::result::Result<usize, bool> {
    text.trim()
        .parse()
        .map_err(|e: std::num::ParseIntError| *e.kind() == std::num::IntErrorKind::PosOverflow)
}

impl Shard {
    pub fn new(index: usize, count: usize) -> std::result::Result<Shard, String> {
        if index >= count {
            return Err(format!(
                "the shard index {index} is not below the number of shards {count} (indices \
                 count from 0)"
            ));
        }
        Ok(Shard { index, count })
    }

    /// This part's range of `len` items: contiguous, sizes differing by at most one.
    pub fn range(&self, len: usize) -> Range<usize> {
        let at = |k: usize| (len as u128 * k as u128 / self.count as u128) as usize;
        at(self.index)..at(self.index + 1)
    }

    /// This part of `paths`, sorted by path first (component by component, as folders are
    /// listed), so every shard of one job splits the same list.
    pub fn take(&self, mut paths: Vec<PathBuf>) -> Vec<PathBuf> {
        paths.sort();
        let r = self.range(paths.len());
        paths.drain(r).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_every_item_once_in_order() {
        for len in [0, 1, 3, 4, 10, 101] {
            for count in 1..=7 {
                let mut all = Vec::new();
                for index in 0..count {
                    let r = Shard { index, count }.range(len);
                    assert!(r.len() == len / count || r.len() == len / count + 1);
                    all.extend(r);
                }
                assert_eq!(
                    all,
                    (0..len).collect::<Vec<_>>(),
                    "len {len}, {count} shards"
                );
            }
        }
        let paths: Vec<PathBuf> = ["b.png", "a/z.png", "a.png", "c.png"]
            .iter()
            .map(PathBuf::from)
            .collect();
        // Component order: the folder `a` before the file `a.png`, as a folder walk lists them.
        assert_eq!(
            Shard { index: 0, count: 2 }.take(paths.clone()),
            vec![PathBuf::from("a/z.png"), PathBuf::from("a.png")]
        );
        assert_eq!(
            Shard { index: 1, count: 2 }.take(paths),
            vec![PathBuf::from("b.png"), PathBuf::from("c.png")]
        );
    }

    #[test]
    fn parse_and_resolve() {
        let given = |i, n| ShardSpec::Given(Shard { index: i, count: n });
        assert_eq!(ShardSpec::parse("0/4"), Ok(given(0, 4)));
        assert_eq!(ShardSpec::parse(" 3 / 4 "), Ok(given(3, 4)));
        assert_eq!(ShardSpec::parse("auto/8"), Ok(ShardSpec::Auto { count: 8 }));
        for bad in ["4/4", "1/0", "x/2", "1", "-1/3", "0/99999999999"] {
            assert!(ShardSpec::parse(bad).is_err(), "{bad}");
        }
        // Numbers past usize are "too large", not "not a whole number".
        for huge in ["0/99999999999999999999", "99999999999999999999/4"] {
            let e = ShardSpec::parse(huge).unwrap_err();
            assert!(!e.contains("not a whole number"), "{huge}: {e}");
        }
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let auto = ShardSpec::Auto { count: 4 };
        let k8s = auto.resolve(env(&[(KUBERNETES_INDEX, "2")])).ok();
        assert_eq!(k8s, Some(Shard { index: 2, count: 4 }));
        let slurm = auto
            .resolve(env(&[(SLURM_INDEX, "4"), (SLURM_MIN, "1")]))
            .ok();
        assert_eq!(slurm, Some(Shard { index: 3, count: 4 }));
        assert!(auto.resolve(env(&[])).is_err());
        assert!(auto
            .resolve(env(&[(SLURM_INDEX, "5"), (SLURM_MIN, "1")]))
            .is_err());
        assert!(auto.resolve(env(&[(KUBERNETES_INDEX, "two")])).is_err());
    }
}

//! Who this process is in a data-parallel job, from the environment the usual launchers set.
//!
//! - `torchrun` (and our own `--nproc-per-node`): `RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR`,
//!   `MASTER_PORT`;
//! - SLURM (`srun`): `SLURM_PROCID`, `SLURM_NTASKS`, `SLURM_LOCALID`, and the first host of
//!   `SLURM_JOB_NODELIST` as the rendezvous host unless `MASTER_ADDR` is set; `MASTER_PORT` or 29500.
//!
//! `RANK=0 WORLD_SIZE=1` forms a one-rank group (as torchrun with one process does): the way to run
//! the NCCL path on a machine with one GPU.

use anyhow::{bail, Context, Result};

/// The port torchrun uses when none is given.
pub const DEFAULT_PORT: u16 = 29500;

/// Where and as whom this process joins its group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendezvous {
    pub rank: usize,
    pub world: usize,
    /// Rank on this node: which GPU it drives.
    pub local_rank: usize,
    pub master_addr: String,
    pub master_port: u16,
    /// Address Gloo binds to (set for single-node launches, where loopback always works).
    pub gloo_bind: Option<String>,
    /// Whether this rank serves the TCPStore: rank 0, unless torchrun's agent already serves one at
    /// MASTER_ADDR:MASTER_PORT (`TORCHELASTIC_USE_AGENT_STORE=True`), to which every rank connects.
    pub serves_store: bool,
}

/// A process's place in the job, and who told it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorldInfo {
    pub rendezvous: Rendezvous,
    pub source: &'static str,
}

fn parse<T: std::str::FromStr>(name: &str, v: &str) -> Result<T> {
    v.trim()
        .parse()
        .ok()
        .with_context(|| format!("environment variable {name}={v:?} is not a valid number"))
}

impl WorldInfo {
    /// The job this process belongs to, or None for a single process. `get` reads a variable
    /// (`std::env::var` in the binary; a map in tests).
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Option<WorldInfo>> {
        let var = |n: &str| get(n).filter(|v| !v.trim().is_empty());
        let (rank, world, local, source) = if let Some(r) = var("RANK") {
            let world = var("WORLD_SIZE").context("RANK is set but WORLD_SIZE is not")?;
            let local = var("LOCAL_RANK").unwrap_or_else(|| r.clone());
            let source = if var("BRAINSSL_LAUNCHER").is_some() {
                "--nproc-per-node"
            } else {
                "torchrun"
            };
            (
                parse::<usize>("RANK", &r)?,
                parse::<usize>("WORLD_SIZE", &world)?,
                parse::<usize>("LOCAL_RANK", &local)?,
                source,
            )
        } else if let (Some(r), Some(n)) = (var("SLURM_PROCID"), var("SLURM_NTASKS")) {
            let local = var("SLURM_LOCALID").unwrap_or_else(|| "0".into());
            (
                parse::<usize>("SLURM_PROCID", &r)?,
                parse::<usize>("SLURM_NTASKS", &n)?,
                parse::<usize>("SLURM_LOCALID", &local)?,
                "SLURM",
            )
        } else {
            return Ok(None);
        };
        if world == 0 || rank >= world {
            bail!("rank {rank} is not below the world size {world} ({source} environment)");
        }
        // torchrun with one process still forms a (one-rank) group, as DDP does; a one-task SLURM
        // allocation is an ordinary single process
        if world == 1 && source == "SLURM" {
            return Ok(None);
        }
        let master_addr = match var("MASTER_ADDR") {
            Some(a) => a,
            None if source == "SLURM" => {
                let list = var("SLURM_JOB_NODELIST")
                    .or_else(|| var("SLURM_NODELIST"))
                    .context("SLURM: neither MASTER_ADDR nor SLURM_JOB_NODELIST is set")?;
                first_host(&list)?
            }
            None => bail!("{source}: RANK is set but MASTER_ADDR is not"),
        };
        let master_port = match var("MASTER_PORT") {
            Some(p) => parse::<u16>("MASTER_PORT", &p)?,
            None => DEFAULT_PORT,
        };
        let loopback = matches!(master_addr.as_str(), "127.0.0.1" | "localhost" | "::1");
        let agent_store = var("TORCHELASTIC_USE_AGENT_STORE").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        Ok(Some(WorldInfo {
            rendezvous: Rendezvous {
                rank,
                world,
                local_rank: local,
                gloo_bind: loopback.then(|| "127.0.0.1".to_string()),
                serves_store: rank == 0 && !agent_store,
                master_addr,
                master_port,
            },
            source,
        }))
    }
}

/// The first host of a SLURM node list: `gpu[03-05,07],cpu1` → `gpu03`, `a,b` → `a`.
pub fn first_host(list: &str) -> Result<String> {
    let list = list.trim();
    let bad = || anyhow::anyhow!("cannot read the SLURM node list {list:?}");
    // the first entry ends at the first comma outside brackets
    let mut depth = 0usize;
    let end = list
        .char_indices()
        .find(|&(_, c)| {
            match c {
                '[' => depth += 1,
                ']' => depth = depth.saturating_sub(1),
                _ => {}
            }
            c == ',' && depth == 0
        })
        .map_or(list.len(), |(i, _)| i);
    let first = &list[..end];
    let Some(open) = first.find('[') else {
        return if first.is_empty() {
            Err(bad())
        } else {
            Ok(first.to_string())
        };
    };
    let close = first.find(']').ok_or_else(bad)?;
    let (prefix, range, suffix) = (&first[..open], &first[open + 1..close], &first[close + 1..]);
    // the first number of the first range keeps its zero padding
    let lo = range
        .split([',', '-'])
        .next()
        .filter(|s| !s.is_empty())
        .ok_or_else(bad)?;
    if !lo.chars().all(|c| c.is_ascii_digit()) || prefix.is_empty() {
        return Err(bad());
    }
    Ok(format!("{prefix}{lo}{suffix}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn slurm_node_lists_give_their_first_host() {
        assert_eq!(first_host("node01").unwrap(), "node01");
        assert_eq!(first_host("gpu[03-05,07],cpu1").unwrap(), "gpu03");
        assert_eq!(first_host("gpu[007,9]").unwrap(), "gpu007");
        assert_eq!(first_host("a-1,b-2").unwrap(), "a-1");
        assert_eq!(first_host("rack1-[10-12]-ib").unwrap(), "rack1-10-ib");
        assert!(first_host("").is_err());
        assert!(first_host("gpu[x-3]").is_err());
        assert!(first_host("gpu[1-3").is_err());
    }

    #[test]
    fn torchrun_and_slurm_environments_are_read() {
        assert_eq!(WorldInfo::from_env(env(&[])).unwrap(), None);
        let t = WorldInfo::from_env(env(&[
            ("RANK", "3"),
            ("WORLD_SIZE", "8"),
            ("LOCAL_RANK", "1"),
            ("MASTER_ADDR", "10.0.0.2"),
            ("MASTER_PORT", "1234"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(t.source, "torchrun");
        let r = &t.rendezvous;
        assert_eq!((r.rank, r.world, r.local_rank, r.master_port), (3, 8, 1, 1234));
        assert_eq!((r.master_addr.as_str(), r.gloo_bind.as_deref()), ("10.0.0.2", None));
        assert!(!r.serves_store);
        // torchrun's agent serves the store: rank 0 connects to it like the others
        let base = [("RANK", "0"), ("WORLD_SIZE", "2"), ("MASTER_ADDR", "h")];
        let own = WorldInfo::from_env(env(&base)).unwrap().unwrap();
        assert!(own.rendezvous.serves_store);
        let agent = WorldInfo::from_env(env(&[
            base[0],
            base[1],
            base[2],
            ("TORCHELASTIC_USE_AGENT_STORE", "True"),
        ]));
        assert!(!agent.unwrap().unwrap().rendezvous.serves_store);
        let s = WorldInfo::from_env(env(&[
            ("SLURM_PROCID", "5"),
            ("SLURM_NTASKS", "16"),
            ("SLURM_LOCALID", "1"),
            ("SLURM_JOB_NODELIST", "gpu[12-15]"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(s.source, "SLURM");
        let r = &s.rendezvous;
        assert_eq!((r.rank, r.world, r.local_rank), (5, 16, 1));
        assert_eq!((r.master_addr.as_str(), r.master_port), ("gpu12", DEFAULT_PORT));
        // a one-task allocation is a single process; torchrun's one rank is a group of one
        assert_eq!(
            WorldInfo::from_env(env(&[("SLURM_PROCID", "0"), ("SLURM_NTASKS", "1")])).unwrap(),
            None
        );
        let one = WorldInfo::from_env(env(&[("RANK", "0"), ("WORLD_SIZE", "1"), ("MASTER_ADDR", "127.0.0.1")]));
        assert_eq!(one.unwrap().unwrap().rendezvous.world, 1);
    }

    #[test]
    fn inconsistent_environments_are_refused() {
        assert!(WorldInfo::from_env(env(&[("RANK", "0")])).is_err());
        assert!(WorldInfo::from_env(env(&[("RANK", "2"), ("WORLD_SIZE", "2"), ("MASTER_ADDR", "h")])).is_err());
        assert!(WorldInfo::from_env(env(&[("RANK", "x"), ("WORLD_SIZE", "2")])).is_err());
        assert!(WorldInfo::from_env(env(&[("RANK", "0"), ("WORLD_SIZE", "2")])).is_err());
        assert!(WorldInfo::from_env(env(&[
            ("RANK", "0"),
            ("WORLD_SIZE", "2"),
            ("MASTER_ADDR", "h"),
            ("MASTER_PORT", "99999")
        ]))
        .is_err());
    }
}

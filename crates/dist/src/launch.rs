//! `--nproc-per-node N`: this binary starts N copies of itself on this machine, as
//! `torchrun --standalone` does, and watches them. Each copy gets `RANK`, `WORLD_SIZE`,
//! `LOCAL_RANK`, `LOCAL_WORLD_SIZE`, `MASTER_ADDR=127.0.0.1` and a free `MASTER_PORT`, then joins
//! the group through [`crate::WorldInfo::from_env`] like a torchrun worker.
//!
//! When one rank fails, the others get `grace` to notice (their collectives fail) and exit with
//! their own error; then they are killed. The launcher's exit status is the first failure's.

use std::net::TcpListener;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Set in the workers' environment: they must not launch again.
pub const LAUNCHED: &str = "BRAINSSL_LAUNCHER";

/// A port on 127.0.0.1 that was free a moment ago (the OS's choice).
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("cannot find a free local port for the rendezvous")?;
    Ok(l.local_addr()?.port())
}

/// Whether this process was started by [`run_local`].
pub fn is_launched_worker() -> bool {
    std::env::var_os(LAUNCHED).is_some()
}

/// Runs `nproc` ranks of `exe args` and waits for all; Ok when every rank exits 0.
pub fn run_local(exe: &std::path::Path, args: &[String], nproc: usize, grace: Duration) -> Result<()> {
    if nproc < 2 {
        bail!("--nproc-per-node {nproc}: needs at least 2 (1 is an ordinary run)");
    }
    let port = free_port()?;
    let mut children: Vec<Child> = Vec::with_capacity(nproc);
    for rank in 0..nproc {
        let child = rank_command(exe, args, rank, nproc, port).spawn();
        match child {
            Ok(c) => children.push(c),
            Err(e) => {
                kill_all(&mut children);
                return Err(e).with_context(|| format!("cannot start rank {rank} ({})", exe.display()));
            }
        }
    }
    watch(children, grace)
}

/// The command line of local rank `rank` of `nproc`, meeting at 127.0.0.1:`port`.
pub fn rank_command(exe: &std::path::Path, args: &[String], rank: usize, nproc: usize, port: u16) -> Command {
    let mut c = Command::new(exe);
    c.args(args)
        .env("RANK", rank.to_string())
        .env("LOCAL_RANK", rank.to_string())
        .env("WORLD_SIZE", nproc.to_string())
        .env("LOCAL_WORLD_SIZE", nproc.to_string())
        .env("MASTER_ADDR", "127.0.0.1")
        .env("MASTER_PORT", port.to_string())
        .env(LAUNCHED, "1");
    c
}

fn kill_all(children: &mut [Child]) {
    for c in children.iter_mut() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

fn watch(mut children: Vec<Child>, grace: Duration) -> Result<()> {
    let n = children.len();
    let mut status: Vec<Option<ExitStatus>> = vec![None; n];
    let mut first_failure: Option<(usize, ExitStatus, Instant)> = None;
    loop {
        for (r, c) in children.iter_mut().enumerate() {
            if status[r].is_none() {
                if let Some(s) = c.try_wait().context("cannot wait for a rank")? {
                    status[r] = Some(s);
                    if !s.success() && first_failure.is_none() {
                        eprintln!("launcher: rank {r} exited with {s}; waiting up to {grace:?} for the other ranks");
                        first_failure = Some((r, s, Instant::now()));
                    }
                }
            }
        }
        if status.iter().all(Option::is_some) {
            break;
        }
        if let Some((_, _, at)) = first_failure {
            if at.elapsed() > grace {
                for (r, c) in children.iter_mut().enumerate() {
                    if status[r].is_none() {
                        eprintln!("launcher: stopping rank {r}");
                        let _ = c.kill();
                        status[r] = c.wait().ok();
                    }
                }
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    match first_failure {
        None => Ok(()),
        Some((r, s, _)) => bail!("rank {r} of {n} failed ({s}); see its error above"),
    }
}

//! Two Gloo ranks on localhost, as two processes: this test binary starts itself twice with the
//! torchrun environment, running the ignored `worker` test in each.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use brainssl_backend::{to_vec, Device, Kind, Tensor};
use brainssl_dist::launch::free_port;
use brainssl_dist::{Collective, GradBuckets, ProcessGroup, WorldInfo};

/// Starts both ranks of `scenario` and returns their outputs (rank 0 first) and how long rank 0
/// took; for the failure scenarios rank 1 is killed once rank 0 has ended.
fn two_ranks(scenario: &str) -> (Output, Output, Duration) {
    let exe = std::env::current_exe().unwrap();
    let port = free_port().unwrap().to_string();
    let started = Instant::now();
    let spawn = |rank: &str| {
        Command::new(&exe)
            .args(["--ignored", "--exact", "worker", "--nocapture", "--test-threads", "1"])
            .env("RANK", rank)
            .env("WORLD_SIZE", "2")
            .env("MASTER_ADDR", "127.0.0.1")
            .env("MASTER_PORT", &port)
            .env("SCENARIO", scenario)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, mut b) = (spawn("0"), spawn("1"));
    let a = a.wait_with_output().unwrap();
    let took = started.elapsed();
    if scenario != "collectives" {
        let _ = b.kill();
    }
    (a, b.wait_with_output().unwrap(), took)
}

fn group(timeout_s: u64) -> ProcessGroup {
    let info = WorldInfo::from_env(|k| std::env::var(k).ok())
        .unwrap()
        .expect("torchrun environment");
    ProcessGroup::join(
        &info.rendezvous,
        Collective::Gloo,
        Device::Cpu,
        Duration::from_secs(timeout_s),
    )
    .unwrap()
}

#[test]
#[ignore = "one rank of the two-process tests; started by them"]
fn worker() {
    let scenario = std::env::var("SCENARIO").unwrap();
    let g = group(if scenario == "collectives" { 60 } else { 3 });
    let r = g.rank as f32;
    match scenario.as_str() {
        "collectives" => {
            // sum: (1 + 2) per element, scaled by position
            let t = Tensor::from_slice(&[1.0f32 + r, 10.0 * (1.0 + r), 100.0 * (1.0 + r)]);
            g.all_reduce_sum(&[&t]).unwrap();
            assert_eq!(to_vec(&t), vec![3.0, 30.0, 300.0]);
            let mut v = [r as f64 + 0.5, 1.0];
            g.sum_f64(&mut v).unwrap();
            assert_eq!(v, [2.0, 2.0]);
            let b = Tensor::from_slice(&[r + 7.0; 4]);
            g.broadcast(&[&b], 1).unwrap();
            assert_eq!(to_vec(&b), vec![8.0; 4]);
            // gradients: rank r's gradient of p·c_r is c_r; the mean is their average, in buckets
            // small enough that the three parameters need two
            let params: Vec<(String, Tensor)> = [5i64, 3, 4]
                .iter()
                .enumerate()
                .map(|(i, &n)| {
                    (
                        format!("p{i}"),
                        Tensor::ones([n], (Kind::Float, Device::Cpu)).set_requires_grad(true),
                    )
                })
                .collect();
            let loss = params
                .iter()
                .enumerate()
                .map(|(i, (_, p))| (p * ((i + 1) as f64 * (1.0 + r as f64))).sum(Kind::Float))
                .fold(Tensor::zeros([], (Kind::Float, Device::Cpu)), |a, b| a + b);
            loss.backward();
            let buckets = GradBuckets::new(&params, 8 * 4).unwrap();
            assert_eq!(buckets.len(), 2);
            buckets.average(&params, &g).unwrap();
            for (i, (_, p)) in params.iter().enumerate() {
                let want = (i + 1) as f32 * 1.5;
                assert!(to_vec(&p.grad()).iter().all(|&x| (x - want).abs() < 1e-6), "p{i}");
            }
            g.barrier().unwrap();
            println!("rank {} ok", g.rank);
        }
        "dies" | "hangs" => {
            if g.rank == 1 {
                if scenario == "dies" {
                    std::process::exit(3);
                }
                std::thread::sleep(Duration::from_secs(30));
                return;
            }
            let t = Tensor::from_slice(&[1.0f32]);
            let err = g.all_reduce_sum(&[&t]).unwrap_err().to_string();
            eprintln!("rank 0 error: {err}");
            assert!(err.contains("rank 0 of 2: all-reduce failed"), "{err}");
            std::process::exit(7);
        }
        other => panic!("unknown scenario {other}"),
    }
}

#[test]
fn sum_broadcast_and_bucketed_gradient_means_across_two_processes() {
    let (a, b, _) = two_ranks("collectives");
    for (r, o) in [(0, &a), (1, &b)] {
        let out = String::from_utf8_lossy(&o.stdout);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            o.status.success() && out.contains(&format!("rank {r} ok")),
            "rank {r}: {out}\n{err}"
        );
    }
}

#[test]
fn a_rank_that_dies_or_hangs_fails_the_other_within_the_timeout() {
    for scenario in ["dies", "hangs"] {
        let (a, _, took) = two_ranks(scenario);
        let err = String::from_utf8_lossy(&a.stderr);
        // rank 0 reached the assertion on its error and exited 7
        assert_eq!(a.status.code(), Some(7), "{scenario}: {err}");
        // the dead peer closes its sockets; the hanging one trips the 3 s timeout
        let why = if scenario == "dies" {
            "Connection closed by peer"
        } else {
            "timed out"
        };
        assert!(err.contains(why), "{scenario}: {err}");
        assert!(took < Duration::from_secs(20), "{scenario}: {took:?}");
    }
}

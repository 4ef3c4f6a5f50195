//! `gfn bench-buffer`: the buffer's own message rate, with the samplers and the learner taken
//! out of the loop. On a 2-core machine the pipeline never pushes a buffer to its limit (the
//! learner saturates first), so this measures the work one buffer does per batch in and per
//! batch out, in one thread: decoding the sampler's message, checking and storing the batch,
//! encoding the acknowledgement, decoding the learner's request, taking a batch and encoding the
//! reply. Messages are prepared beforehand and never touch a socket, so ZeroMQ's own cost (a few
//! microseconds a message on loopback) is not in the figure: it is the buffer's CPU ceiling.

use anyhow::{bail, Context, Result};
use gfn_buffer::core::{BufferCore, Output};
use gfn_buffer::setup::{new_core, Hosting};
use gfn_common::config::{Mode, Settings};
use gfn_common::wire::{decode, encode, Message};
use gfn_common::{RunConfig, TrajectoryBatch};
use serde::Serialize;
use std::time::Instant;

/// The run token of the benchmark's messages.
const RUN: &str = "bench-buffer";

/// One measured batch size.
#[derive(Debug, Clone, Serialize)]
pub struct BufferRow {
    /// Trajectories per sampler batch and per learner request.
    pub batch_size: usize,
    /// Batches that went in and out.
    pub batches: u64,
    /// Batches in (and as many out) per second: each is four messages (batch, ack, request,
    /// reply).
    pub batches_per_s: f64,
    /// Messages decoded or encoded per second.
    pub messages_per_s: f64,
    pub trajectories_per_s: f64,
    /// Mean bytes of a sampler's batch message.
    pub bytes_per_batch: f64,
}

/// Runs `batches` batches of `batch_size` trajectories through one buffer on 4-D H=8.
pub fn measure(batch_size: usize, batches: u64) -> Result<BufferRow> {
    let cfg = RunConfig {
        ndim: 4,
        height: 8,
        batch_size,
        n_trajectories: batches * batch_size as u64,
        ..RunConfig::default()
    };
    let settings: Settings = cfg.settings(Mode::Buffer)?;
    let mut core = new_core(
        &settings.buffer(),
        &settings.env(),
        Hosting::Process { id: 0 },
    )?;
    let walks = random_walks(batch_size, 64);
    // Prepared outside the timed loop: the samplers' and the learner's encoding is their cost.
    let (mut ins, mut asks) = (Vec::with_capacity(batches as usize), vec![]);
    for i in 0..batches {
        let mut batch = walks[i as usize % walks.len()].clone();
        batch.versions.fill(i);
        ins.push(encode(
            RUN,
            "sampler-0",
            &Message::Trajectories { seq: i, batch },
        ));
        asks.push(encode(
            RUN,
            "learner-0",
            &Message::Request {
                id: i,
                n: batch_size as u32,
                version: i,
                min_version: 0,
            },
        ));
    }
    let bytes_per_batch = ins.iter().map(Vec::len).sum::<usize>() as f64 / batches as f64;
    let (sampler, learner) = (b"s".to_vec(), b"l".to_vec());
    let mut sent = 0usize;
    let start = Instant::now();
    for (batch_msg, ask) in ins.iter().zip(&asks) {
        match decode(batch_msg, RUN)?.body {
            Message::Trajectories { seq, batch } => core
                .offer(sampler.clone(), "sampler-0", seq, batch)
                .map_err(|e| anyhow::anyhow!("batch refused: {e:?}"))?,
            other => bail!("expected trajectories, decoded {}", other.kind()),
        }
        sent += answer(&mut core);
        match decode(ask, RUN)?.body {
            Message::Request {
                id,
                n,
                version,
                min_version,
            } => core
                .request(learner.clone(), id, n as usize, version, min_version)
                .map_err(|e| anyhow::anyhow!("request refused: {e:?}"))?,
            other => bail!("expected a request, decoded {}", other.kind()),
        }
        sent += answer(&mut core);
    }
    let secs = start.elapsed().as_secs_f64();
    let report = core.finish();
    if report.served != batches * batch_size as u64 || sent == 0 {
        bail!(
            "the buffer served {} of {} trajectories",
            report.served,
            batches * batch_size as u64
        );
    }
    Ok(BufferRow {
        batch_size,
        batches,
        batches_per_s: batches as f64 / secs,
        messages_per_s: 4.0 * batches as f64 / secs,
        trajectories_per_s: (batches * batch_size as u64) as f64 / secs,
        bytes_per_batch,
    })
}

/// Steps the core and encodes what it sends, as the ZeroMQ driver (`gfn_buffer::net`) does;
/// returns the bytes.
fn answer(core: &mut BufferCore) -> usize {
    let mut bytes = 0;
    for out in core.step() {
        let message = match out {
            Output::Ack { seq, .. } => Message::Ack { seq },
            Output::Reply { id, batch, .. } => Message::Reply {
                id,
                batch,
                received: core.received(),
                queued: core.queued(),
            },
        };
        bytes += encode(RUN, "buffer-0", &message).len();
    }
    bytes
}

/// `count` batches of `batch_size` valid 4-D H=8 trajectories of varied lengths, from a fixed
/// linear congruential sequence (the content only has to be valid and not all alike).
fn random_walks(batch_size: usize, count: usize) -> Vec<TrajectoryBatch> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move |m: u64| {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (x >> 33) % m
    };
    (0..count)
        .map(|_| {
            let mut batch = TrajectoryBatch::default();
            for _ in 0..batch_size {
                let mut state = [0u16; 4];
                let mut actions = vec![];
                while next(8) != 0 {
                    let d = next(4) as usize;
                    if state[d] < 7 {
                        state[d] += 1;
                        actions.push(d as u8);
                    }
                }
                actions.push(4); // exit
                batch.push(&actions, -1.0, 0);
            }
            batch
        })
        .collect()
}

/// The rows as a markdown table.
pub fn markdown(rows: &[BufferRow]) -> String {
    let mut md = "| batch size | batches/s in (and out) | messages/s | trajectories/s | bytes per batch |\n|---|---|---|---|---|\n".to_string();
    for r in rows {
        md += &format!(
            "| {} | {:.0} | {:.0} | {:.0} | {:.0} |\n",
            r.batch_size,
            r.batches_per_s,
            r.messages_per_s,
            r.trajectories_per_s,
            r.bytes_per_batch
        );
    }
    md
}

/// Measures each batch size in turn.
pub fn run(batch_sizes: &[usize], batches: u64) -> Result<Vec<BufferRow>> {
    batch_sizes
        .iter()
        .map(|&b| {
            let row = measure(b, batches).with_context(|| format!("batch size {b}"))?;
            tracing::info!(
                "batch {b}: {:.0} batches/s, {:.0} trajectories/s",
                row.batches_per_s,
                row.trajectories_per_s
            );
            Ok(row)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_batch_goes_in_and_out_and_the_walks_are_valid() {
        let grid = gfn_common::env::HyperGrid::new(4, 8).unwrap();
        for b in random_walks(16, 8) {
            b.validate(&grid).unwrap();
        }
        let row = measure(16, 200).unwrap();
        assert_eq!(row.batches, 200);
        assert!(row.batches_per_s > 0.0 && row.bytes_per_batch > 16.0);
    }
}

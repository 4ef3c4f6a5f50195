//! The buffer over ZeroMQ: samplers push to a ROUTER (ingest), learners ask at another ROUTER
//! (serve). This driver only moves messages between the sockets and a
//! [`BufferCore`], which decides everything. The buffer role owns this loop; `gfn-net` gives it
//! the sockets.

use crate::core::{BufferCore, BufferReport, Output};
use gfn_common::pipe::Shutdown;
use gfn_common::wire::Message;
use gfn_net::{NetError, Socket};
use std::time::{Duration, Instant};

/// How a buffer's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// A learner said the run is over.
    Finished,
    /// Nothing was heard for the idle timeout.
    Idle,
    /// SIGINT or SIGTERM.
    Stopped,
}

/// The buffer's two sockets.
pub struct BufferSockets {
    pub ingest: Socket,
    pub serve: Socket,
}

/// Serves until a learner ends the run, nothing is heard for `idle`, or `shutdown` is set.
pub fn serve(
    core: &mut BufferCore,
    sockets: &mut BufferSockets,
    idle: Duration,
    shutdown: &Shutdown,
) -> Result<Ending, NetError> {
    let mut last_heard = Instant::now();
    loop {
        if shutdown.is_set() {
            return Ok(Ending::Stopped);
        }
        let (in_ready, req_ready) = {
            let mut items = [
                sockets.ingest.poll_item(zmq::POLLIN),
                sockets.serve.poll_item(zmq::POLLIN),
            ];
            match zmq::poll(&mut items, 100) {
                // A signal interrupted the wait: the loop sees the stop flag next.
                Err(zmq::Error::EINTR) => continue,
                other => other.map_err(|source| NetError::Zmq {
                    what: "polling".into(),
                    source,
                })?,
            };
            (items[0].is_readable(), items[1].is_readable())
        };
        if in_ready && take_batches(core, &mut sockets.ingest)? {
            last_heard = Instant::now();
        }
        if req_ready {
            match take_requests(core, &mut sockets.serve)? {
                Heard::Shutdown => return Ok(Ending::Finished),
                Heard::Something => last_heard = Instant::now(),
                Heard::Nothing => {}
            }
        }
        deliver(core, sockets)?;
        core.set_dropped(sockets.ingest.dropped + sockets.serve.dropped);
        if last_heard.elapsed() > idle {
            tracing::warn!("nothing heard for {} s, stopping", idle.as_secs());
            return Ok(Ending::Idle);
        }
    }
}

enum Heard {
    Nothing,
    Something,
    Shutdown,
}

/// Hands every waiting batch to the core; a refused one is acknowledged at once so that an
/// honest sampler goes on. Returns whether anything came.
fn take_batches(core: &mut BufferCore, ingest: &mut Socket) -> Result<bool, NetError> {
    let mut heard = false;
    while let Some((peer, env)) = ingest.recv(0)? {
        heard = true;
        match env.body {
            Message::Trajectories { seq, batch } => {
                if let Err(e) = core.offer(peer.clone(), &env.sender, seq, batch) {
                    tracing::debug!("dropped a batch from {}: {e}", env.sender);
                    let _ = ingest.send_to(&peer, &Message::Ack { seq }, 0);
                }
            }
            other => tracing::debug!("ignored {} from {}", other.kind(), env.sender),
        }
    }
    Ok(heard)
}

fn take_requests(core: &mut BufferCore, serve: &mut Socket) -> Result<Heard, NetError> {
    let mut heard = Heard::Nothing;
    while let Some((peer, env)) = serve.recv(0)? {
        heard = Heard::Something;
        match env.body {
            Message::Request {
                id,
                n,
                version,
                min_version,
            } => {
                if let Err(e) = core.request(peer, id, n as usize, version, min_version) {
                    tracing::warn!("dropped a request from {}: {e}", env.sender);
                }
            }
            Message::Shutdown => return Ok(Heard::Shutdown),
            other => tracing::debug!("ignored {} from {}", other.kind(), env.sender),
        }
    }
    Ok(heard)
}

/// Sends what the core decided: acknowledgements to samplers, answers to learners. Nothing
/// waits for room: an answer that cannot go out at once (its learner is gone, or never reads
/// what it asked for) goes back into the core, so such a peer can neither hold the buffer up
/// nor take the run's trajectories.
fn deliver(core: &mut BufferCore, sockets: &mut BufferSockets) -> Result<(), NetError> {
    for out in core.step() {
        match out {
            Output::Ack { peer, seq } => {
                match sockets.ingest.send_to(&peer, &Message::Ack { seq }, 0) {
                    Err(NetError::Unreachable) => core.peer_gone(&peer),
                    other => {
                        other?;
                    }
                }
            }
            Output::Reply {
                peer, id, batch, ..
            } => {
                let reply = Message::Reply {
                    id,
                    batch,
                    received: core.received(),
                    queued: core.queued(),
                };
                match sockets.serve.send_to(&peer, &reply, 0) {
                    Ok(true) => {}
                    Ok(false) | Err(NetError::Unreachable) => {
                        tracing::info!("a learner is gone: its batch goes back");
                        if let Message::Reply { batch, .. } = &reply {
                            core.undeliverable(&peer, batch);
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(())
}

/// Writes the buffer's report to `buffer-<id>.json` in `dir` (a failure is logged). It is
/// written beside and renamed into place, so a reader that sees the file sees all of it.
pub fn write_report(dir: &std::path::Path, id: u64, report: &BufferReport) {
    let path = dir.join(format!("buffer-{id}.json"));
    let text = match serde_json::to_string_pretty(report) {
        Ok(t) => t,
        Err(e) => return tracing::warn!("cannot encode the buffer's report: {e}"),
    };
    let partial = dir.join(format!("buffer-{id}.json.tmp"));
    let written = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&partial, text))
        .and_then(|()| std::fs::rename(&partial, &path));
    if let Err(e) = written {
        tracing::warn!("cannot write {}: {e}", path.display());
    }
}

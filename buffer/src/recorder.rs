//! Recording of what a buffer takes in: every stored batch goes into a dump.

use crate::dump::{DumpError, DumpWriter};
use gfn_common::config::{BufferSection, EnvSection};
use gfn_common::TrajectoryBatch;

/// Size at which a recording starts a new segment.
pub const DUMP_SEGMENT_BYTES: u64 = 64 << 20;

/// Records inbound batches when asked to; a failing recording stops with an error message but
/// does not stop the run.
#[derive(Default)]
pub struct Recorder(Option<DumpWriter>);

impl Recorder {
    /// Records into `writer`.
    pub fn new(writer: Option<DumpWriter>) -> Self {
        Self(writer)
    }

    /// The recorder of a buffer: a dump writer with `--record`, else nothing. `who` names the
    /// recording process in the dump's run id.
    pub fn for_run(cfg: &BufferSection, env: &EnvSection, who: &str) -> Result<Self, DumpError> {
        let Some(dir) = &cfg.record else {
            return Ok(Self::default());
        };
        let run_id = format!("{who}-seed{}-{}", cfg.seed, cfg.run_dir.display());
        let writer = DumpWriter::create(dir, env.clone(), &run_id, DUMP_SEGMENT_BYTES)?;
        tracing::info!("recording trajectories into {}", dir.display());
        Ok(Self::new(Some(writer)))
    }

    /// Appends a batch to the recording.
    pub fn record(&mut self, batch: &TrajectoryBatch) {
        if let Some(w) = &mut self.0 {
            if let Err(e) = w.write(batch) {
                tracing::error!("recording stopped: {e}");
                self.0 = None;
            }
        }
    }

    /// Closes the recording (writes its DONE marker).
    pub fn finish(self) {
        if let Some(w) = self.0 {
            if let Err(e) = w.finish() {
                tracing::error!("could not close the recording: {e}");
            }
        }
    }
}

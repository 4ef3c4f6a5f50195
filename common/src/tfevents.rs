//! TensorBoard event files: the TFRecord framing and the few protocol-buffer messages that
//! scalars, text and images need, encoded by hand (a protobuf library would bring a code
//! generator for four messages). Any TensorBoard reads them, and `wandb sync
//! --sync-tensorboard` uploads them.
//!
//! A file is a sequence of records `len: u64 LE, masked_crc32c(len): u32 LE, data,
//! masked_crc32c(data): u32 LE`, each `data` an `Event` message; the first event names the
//! format version (`brain.Event:2`).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The format version TensorBoard expects in a file's first event.
const FILE_VERSION: &str = "brain.Event:2";
/// `DataType.DT_STRING` in TensorFlow's `types.proto`.
const DT_STRING: u64 = 7;

/// Appends events to one `events.out.tfevents.*` file, flushing after each call so that a
/// reader (or a crash) sees whole records only.
pub struct EventWriter {
    out: BufWriter<File>,
    path: PathBuf,
}

impl EventWriter {
    /// Starts a new event file in `dir` (which must exist). The name carries the time and the
    /// process id, so that two writers never share a file.
    pub fn create(dir: &Path) -> std::io::Result<Self> {
        let secs = now().floor() as u64;
        let name = format!("events.out.tfevents.{secs}.gfn.{}", std::process::id());
        let path = dir.join(name);
        let mut writer = Self {
            out: BufWriter::new(File::create(&path)?),
            path,
        };
        let mut event = event_header(0);
        string_field(&mut event, 3, FILE_VERSION);
        writer.record(&event)?;
        Ok(writer)
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// One event at `step` holding a scalar per `(tag, value)`; non-finite values are kept
    /// (TensorBoard shows NaN and infinities).
    pub fn scalars(&mut self, step: u64, values: &[(String, f64)]) -> std::io::Result<()> {
        let mut summary = vec![];
        for (tag, value) in values {
            let mut v = vec![];
            string_field(&mut v, 1, tag);
            key(&mut v, 2, 5);
            v.extend_from_slice(&(*value as f32).to_le_bytes());
            bytes_field(&mut summary, 1, &v);
        }
        self.summary(step, &summary)
    }

    /// `text` (Markdown) under `tag`, as TensorBoard's text plugin stores it: a string tensor.
    pub fn text(&mut self, step: u64, tag: &str, text: &str) -> std::io::Result<()> {
        let mut plugin = vec![];
        string_field(&mut plugin, 1, "text");
        let mut metadata = vec![];
        bytes_field(&mut metadata, 1, &plugin);
        let mut tensor = vec![];
        varint_field(&mut tensor, 1, DT_STRING);
        bytes_field(&mut tensor, 2, &[]); // a scalar: a shape with no dimensions
        bytes_field(&mut tensor, 8, text.as_bytes());
        let mut v = vec![];
        string_field(&mut v, 1, tag);
        bytes_field(&mut v, 8, &tensor);
        bytes_field(&mut v, 9, &metadata);
        let mut summary = vec![];
        bytes_field(&mut summary, 1, &v);
        self.summary(step, &summary)
    }

    /// A PNG image under `tag`; its size is read from the PNG header.
    pub fn png(&mut self, step: u64, tag: &str, png: &[u8]) -> std::io::Result<()> {
        let (width, height) = png_size(png).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{tag}: not a PNG"))
        })?;
        let mut image = vec![];
        varint_field(&mut image, 1, height.into());
        varint_field(&mut image, 2, width.into());
        varint_field(&mut image, 3, 4); // RGBA
        bytes_field(&mut image, 4, png);
        let mut v = vec![];
        string_field(&mut v, 1, tag);
        bytes_field(&mut v, 4, &image);
        let mut summary = vec![];
        bytes_field(&mut summary, 1, &v);
        self.summary(step, &summary)
    }

    fn summary(&mut self, step: u64, summary: &[u8]) -> std::io::Result<()> {
        let mut event = event_header(step);
        bytes_field(&mut event, 5, summary);
        self.record(&event)
    }

    /// Writes one TFRecord and flushes it.
    fn record(&mut self, data: &[u8]) -> std::io::Result<()> {
        let len = (data.len() as u64).to_le_bytes();
        self.out.write_all(&len)?;
        self.out.write_all(&masked_crc32c(&len).to_le_bytes())?;
        self.out.write_all(data)?;
        self.out.write_all(&masked_crc32c(data).to_le_bytes())?;
        self.out.flush()
    }
}

/// Seconds since the Unix epoch.
fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// An `Event` with its wall time (field 1, a double) and step (field 2).
fn event_header(step: u64) -> Vec<u8> {
    let mut event = vec![];
    key(&mut event, 1, 1);
    event.extend_from_slice(&now().to_le_bytes());
    varint_field(&mut event, 2, step);
    event
}

/// A field key: its number and wire type (0 varint, 1 fixed 64, 2 length-delimited, 5 fixed
/// 32).
fn key(out: &mut Vec<u8>, field: u64, wire_type: u64) {
    varint(out, field << 3 | wire_type);
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_field(out: &mut Vec<u8>, field: u64, v: u64) {
    key(out, field, 0);
    varint(out, v);
}

fn bytes_field(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    key(out, field, 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn string_field(out: &mut Vec<u8>, field: u64, s: &str) {
    bytes_field(out, field, s.as_bytes());
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(png: &[u8]) -> Option<(u32, u32)> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if !png.starts_with(SIGNATURE) || png.get(12..16) != Some(b"IHDR") {
        return None;
    }
    let be = |at: usize| Some(u32::from_be_bytes(png.get(at..at + 4)?.try_into().ok()?));
    Some((be(16)?, be(20)?))
}

/// CRC-32C (Castagnoli), rotated and offset as TFRecord stores it.
fn masked_crc32c(data: &[u8]) -> u32 {
    let crc = crc32c(data);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

fn crc32c(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, entry) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 == 1 {
                    0x82f6_3b78 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            *entry = c;
        }
        t
    });
    !data.iter().fold(!0u32, |c, &b| {
        table[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn varints_encode_as_protobuf_does() {
        let enc = |v| {
            let mut out = vec![];
            varint(&mut out, v);
            out
        };
        assert_eq!(enc(1), [1]);
        assert_eq!(enc(300), [0xac, 0x02]);
        assert_eq!(enc(u64::MAX).len(), 10);
    }

    #[test]
    fn records_frame_and_checksum_their_events() {
        let dir = std::env::temp_dir().join(format!("gfn-tfevents-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut w = EventWriter::create(&dir).unwrap();
        w.scalars(3, &[("a/b".into(), 0.5)]).unwrap();
        let bytes = std::fs::read(w.path()).unwrap();
        let mut at = 0;
        let mut records = 0;
        while at < bytes.len() {
            let len = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
            let len_crc = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap());
            assert_eq!(len_crc, masked_crc32c(&bytes[at..at + 8]));
            let data = &bytes[at + 12..at + 12 + len];
            let crc = u32::from_le_bytes(bytes[at + 12 + len..at + 16 + len].try_into().unwrap());
            assert_eq!(crc, masked_crc32c(data));
            at += 16 + len;
            records += 1;
        }
        assert_eq!(records, 2, "the version event and one summary");
        assert!(bytes
            .windows(FILE_VERSION.len())
            .any(|w| w == FILE_VERSION.as_bytes()));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn png_size_reads_the_header_and_refuses_other_bytes() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend_from_slice(&640u32.to_be_bytes());
        png.extend_from_slice(&480u32.to_be_bytes());
        assert_eq!(png_size(&png), Some((640, 480)));
        assert_eq!(png_size(b"GIF89a"), None);
        assert_eq!(png_size(&png[..18]), None);
    }
}

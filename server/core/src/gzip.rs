//! Gzip at the fastest level in pieces, for layer blobs: one thread deflates
//! at 200-250 MB/s here, so a 100 MB layer took half a second of a publish.
//!
//! The input is cut into `CHUNK`-sized pieces, each deflated with the 32 KiB
//! before it as its dictionary (what `pigz` does) and ended with a sync flush
//! so that the pieces join on a byte boundary. The pieces are written in
//! order as one gzip member, whose CRC is combined from theirs. `new`
//! deflates them on every core, `beside_steps` on one while steps run and
//! on every core once none does (`crate::busy`); the bytes depend on the
//! input alone, never on the cores or thread timing: the same layer gives
//! the same blob digest on every machine, whichever wrote it.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::thread::JoinHandle;

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

/// The piece each thread deflates.
const CHUNK: usize = 1 << 20;
/// Deflate's window: the dictionary each piece starts with.
const WINDOW: usize = 32 << 10;
/// The gzip header: deflate, no flags, no time, fastest level, unknown OS.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 0xff];

type Piece = JoinHandle<io::Result<(Vec<u8>, Crc)>>;

/// A writer that gzips what it is given into `out` (see the module docs).
/// `finish` writes the end of the stream; dropped unfinished, the stream is
/// cut short.
pub struct ParallelGzip<W: Write> {
    out: W,
    chunk: Vec<u8>,
    /// The end of the piece before `chunk`: its dictionary.
    window: Vec<u8>,
    pending: VecDeque<Piece>,
    crc: Crc,
    cores: Cores,
}

/// How many pieces deflate on threads of their own at once.
#[derive(Debug, Clone, Copy)]
enum Cores {
    /// Up to this many.
    All(usize),
    /// None while a step runs (on the writer's thread, each piece before the
    /// next is taken), else up to this many.
    BesideSteps(usize),
}

impl Cores {
    fn now(self) -> usize {
        match self {
            Self::All(cores) => cores,
            Self::BesideSteps(_) if crate::busy::steps_running() => 0,
            Self::BesideSteps(cores) => cores,
        }
    }
}

fn core_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl<W: Write> ParallelGzip<W> {
    /// Compressing on every core: a piece per core deflates while the
    /// writer takes more input.
    pub fn new(out: W) -> io::Result<Self> {
        Self::with_cores(out, Cores::All(core_count()))
    }

    /// For work beside the steps (a remote cache push): on the writer's
    /// thread while a step runs, each piece before the next is taken, and on
    /// every core while none does (see `crate::busy`).
    pub fn beside_steps(out: W) -> io::Result<Self> {
        Self::with_cores(out, Cores::BesideSteps(core_count()))
    }

    fn with_cores(mut out: W, cores: Cores) -> io::Result<Self> {
        out.write_all(&HEADER)?;
        Ok(Self {
            out,
            chunk: Vec::with_capacity(CHUNK),
            window: Vec::new(),
            pending: VecDeque::new(),
            crc: Crc::new(),
            cores,
        })
    }

    /// Ends the stream (the last piece, the CRC and the length) and returns
    /// the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.submit(true)?;
        while !self.pending.is_empty() {
            self.write_oldest()?;
        }
        self.out.write_all(&self.crc.sum().to_le_bytes())?;
        // ISIZE: the length modulo 2^32, as gzip defines it.
        self.out.write_all(&self.crc.amount().to_le_bytes())?;
        self.out.flush()?;
        Ok(self.out)
    }

    /// Deflates `chunk` here (no thread now) or hands it to a thread of its
    /// own, then waits for the oldest piece when every core has one (so at
    /// most one piece per core is held).
    fn submit(&mut self, last: bool) -> io::Result<()> {
        let input = std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK));
        // Every piece but the last is whole, so its end is a whole window.
        let dictionary = std::mem::replace(
            &mut self.window,
            input[input.len().saturating_sub(WINDOW)..].to_vec(),
        );
        let threads = self.cores.now();
        if threads == 0 {
            // Here, without a thread, after the pieces still on threads.
            while !self.pending.is_empty() {
                self.write_oldest()?;
            }
            let (bytes, crc) = deflate(&input, &dictionary, last)?;
            return self.write_piece(&bytes, &crc);
        }
        let piece = std::thread::Builder::new()
            .name("gantry-gzip".into())
            .spawn(move || deflate(&input, &dictionary, last))?;
        self.pending.push_back(piece);
        while self.pending.len() > threads {
            self.write_oldest()?;
        }
        Ok(())
    }

    fn write_piece(&mut self, bytes: &[u8], crc: &Crc) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.crc.combine(crc);
        Ok(())
    }

    fn write_oldest(&mut self) -> io::Result<()> {
        let Some(piece) = self.pending.pop_front() else {
            return Ok(());
        };
        let (bytes, crc) = piece
            .join()
            .map_err(|_| io::Error::other("a gzip thread panicked"))??;
        self.write_piece(&bytes, &crc)
    }
}

impl<W: Write> Write for ParallelGzip<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let take = buf.len().min(CHUNK - self.chunk.len());
        self.chunk.extend_from_slice(&buf[..take]);
        if self.chunk.len() == CHUNK {
            self.submit(false)?;
        }
        Ok(take)
    }

    /// Writes the pieces done so far; what is still being cut stays (a
    /// flush that ended a piece early would change the bytes).
    fn flush(&mut self) -> io::Result<()> {
        while self
            .pending
            .front()
            .is_some_and(|piece| piece.is_finished())
        {
            self.write_oldest()?;
        }
        self.out.flush()
    }
}

/// `input` as raw deflate, primed with `dictionary`, ending on a byte
/// boundary (a sync flush) or, `last`, with the final block; and its CRC.
fn deflate(input: &[u8], dictionary: &[u8], last: bool) -> io::Result<(Vec<u8>, Crc)> {
    let mut crc = Crc::new();
    crc.update(input);
    let mut compress = Compress::new(Compression::fast(), false);
    if !dictionary.is_empty() {
        compress
            .set_dictionary(dictionary)
            .map_err(io::Error::other)?;
    }
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut out = Vec::with_capacity(input.len() / 2 + 1024);
    loop {
        if out.capacity() - out.len() < 64 << 10 {
            out.reserve(256 << 10);
        }
        let consumed = usize::try_from(compress.total_in()).expect("pieces fit in memory");
        let status = compress
            .compress_vec(&input[consumed..], &mut out, flush)
            .map_err(io::Error::other)?;
        let all_in = compress.total_in() == input.len() as u64;
        // A sync flush is complete once the input is in and the output had
        // room to spare; the final block once the stream ends.
        let done = match status {
            Status::StreamEnd => true,
            _ => !last && all_in && out.len() < out.capacity(),
        };
        if done {
            return Ok((out, crc));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    fn gzipped(input: &[u8], writes: usize) -> Vec<u8> {
        let mut gzip = ParallelGzip::new(Vec::new()).unwrap();
        for part in input.chunks(writes.max(1)) {
            gzip.write_all(part).unwrap();
        }
        gzip.finish().unwrap()
    }

    fn gunzipped(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        // A single-member reader: the stream must be one gzip member.
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    /// Compressible text with incompressible runs.
    fn sample(len: usize) -> Vec<u8> {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        (0..len)
            .map(|i| {
                if (i / 5000) % 3 == 0 {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                } else {
                    b"layer bytes, "[i % 13]
                }
            })
            .collect()
    }

    #[test]
    fn round_trips_at_every_size_around_a_piece() {
        for len in [
            0,
            1,
            100,
            CHUNK - 1,
            CHUNK,
            CHUNK + 1,
            3 * CHUNK + CHUNK / 2,
        ] {
            let input = sample(len);
            let bytes = gzipped(&input, 8191);
            assert_eq!(gunzipped(&bytes), input, "length {len}");
        }
    }

    #[test]
    fn the_bytes_depend_on_the_input_alone() {
        let input = sample(2 * CHUNK + 12345);
        let one = gzipped(&input, 1 << 16);
        let other = gzipped(&input, 777);
        assert_eq!(one, other);
        // Beside steps: on threads while no step runs (unless another test
        // runs one), on the writer's thread while this one does, and on
        // threads again after; pieces still on threads go out first.
        let mut beside = ParallelGzip::beside_steps(Vec::new()).unwrap();
        beside.write_all(&input[..CHUNK + 10]).unwrap();
        let running = crate::busy::step();
        beside
            .write_all(&input[CHUNK + 10..2 * CHUNK + 20])
            .unwrap();
        drop(running);
        beside.write_all(&input[2 * CHUNK + 20..]).unwrap();
        assert_eq!(beside.finish().unwrap(), one);
        // As small as one thread's stream, give or take the dictionaries.
        let mut single = flate2::write::GzEncoder::new(Vec::new(), Compression::fast());
        single.write_all(&input).unwrap();
        let single = single.finish().unwrap();
        assert!(
            one.len() as f64 <= single.len() as f64 * 1.02 + 64.0,
            "{} against {}",
            one.len(),
            single.len()
        );
    }
}

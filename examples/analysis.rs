//! Parallel data analysis: group-by aggregates over a CSV of taxi trips, computed by
//! a process pool over byte ranges of the file and merged in the parent.
//!
//! ```text
//! cargo run --release --example analysis                 # 4 million rows, cached under target/
//! cargo run --release --example analysis -- --check      # and recompute serially, compare
//! cargo run --release --example analysis -- --rows 200000 --workers 4
//! ```
//!
//! `--json` prints the figures as one JSON line instead of the tables (the
//! benchmarks use it).
//!
//! The first run writes `target/mproc-examples/trips-<rows>.csv` (about 40 bytes a
//! row); later runs reuse it. Each task gets a byte range of the file, owns the
//! lines that *start* inside it, parses them with the `csv` crate and returns
//! partial aggregates: count, fare and distance sums per (zone, hour), and fare
//! histograms per zone and per hour (10-cent bins) from which the parent reads
//! percentiles after merging. Money and distance are summed as integers (cents,
//! tens of metres), so the merged result is exactly the serial one, which
//! `--check` proves.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use mproc::pool::Pool;
use mproc::process::cpu_count;
use serde::{Deserialize, Serialize};

/// Zones `Z00`..`Z63`.
const ZONES: usize = 64;
const HOURS: usize = 24;
/// Fare histogram bins of 10 cents; the last bin holds everything from $200 up.
const BIN_CENTS: u64 = 10;
const BINS: usize = 2000;
/// Bytes per task: about 8 tasks per worker (so that the last ones balance the
/// load), each between 1 MiB (a task's fixed cost stays noise) and 8 MiB.
fn chunk_bytes(len: u64, workers: usize) -> u64 {
    (len / (8 * workers.max(1) as u64)).clamp(1 << 20, 8 << 20)
}

// ---------------------------------------------------------------------------
// The aggregate: what one chunk computes and what merging adds up.

/// Sums for one (zone, hour) cell.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Cell {
    trips: u64,
    fare_cents: u64,
    /// Tens of metres.
    distance_dam: u64,
}

/// Partial (or, once merged, total) aggregates of some lines of the file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Aggregate {
    /// `ZONES * HOURS` cells, zone-major.
    cells: Vec<Cell>,
    /// `ZONES * BINS` fare counts.
    zone_fares: Vec<u32>,
    /// `HOURS * BINS` fare counts.
    hour_fares: Vec<u32>,
    /// Lines that were not a valid trip (counted, not fatal).
    rejected: u64,
}

impl Aggregate {
    fn new() -> Aggregate {
        Aggregate {
            cells: vec![Cell::default(); ZONES * HOURS],
            zone_fares: vec![0; ZONES * BINS],
            hour_fares: vec![0; HOURS * BINS],
            rejected: 0,
        }
    }

    fn add(&mut self, trip: Trip) {
        let cell = &mut self.cells[trip.zone * HOURS + trip.hour];
        cell.trips += 1;
        cell.fare_cents += trip.fare_cents;
        cell.distance_dam += trip.distance_dam;
        let bin = ((trip.fare_cents / BIN_CENTS) as usize).min(BINS - 1);
        self.zone_fares[trip.zone * BINS + bin] += 1;
        self.hour_fares[trip.hour * BINS + bin] += 1;
    }

    fn merge(&mut self, other: &Aggregate) {
        for (a, b) in self.cells.iter_mut().zip(&other.cells) {
            a.trips += b.trips;
            a.fare_cents += b.fare_cents;
            a.distance_dam += b.distance_dam;
        }
        for (a, b) in self.zone_fares.iter_mut().zip(&other.zone_fares) {
            *a += b;
        }
        for (a, b) in self.hour_fares.iter_mut().zip(&other.hour_fares) {
            *a += b;
        }
        self.rejected += other.rejected;
    }

    fn trips(&self) -> u64 {
        self.cells.iter().map(|c| c.trips).sum()
    }

    /// The sums of the cells that `pick` selects.
    fn total(&self, pick: impl Fn(usize, usize) -> bool) -> Cell {
        let mut t = Cell::default();
        for z in 0..ZONES {
            for h in 0..HOURS {
                if pick(z, h) {
                    let c = self.cells[z * HOURS + h];
                    t.trips += c.trips;
                    t.fare_cents += c.fare_cents;
                    t.distance_dam += c.distance_dam;
                }
            }
        }
        t
    }
}

/// The fare (in cents, a bin's lower edge) below which `q` of the trips in
/// histogram `bins` fall.
fn percentile(bins: &[u32], q: f64) -> u64 {
    let n: u64 = bins.iter().map(|&b| u64::from(b)).sum();
    if n == 0 {
        return 0;
    }
    let rank = ((q * n as f64).ceil() as u64).max(1);
    let mut seen = 0u64;
    for (i, &b) in bins.iter().enumerate() {
        seen += u64::from(b);
        if seen >= rank {
            return i as u64 * BIN_CENTS;
        }
    }
    (BINS as u64 - 1) * BIN_CENTS
}

// ---------------------------------------------------------------------------
// Parsing one row.

/// One valid row.
struct Trip {
    zone: usize,
    hour: usize,
    fare_cents: u64,
    distance_dam: u64,
}

/// `12.75` → 1275; two decimals at most, no sign.
fn parse_hundredths(field: &[u8]) -> Option<u64> {
    let (int, frac) = match field.iter().position(|&b| b == b'.') {
        Some(dot) => (&field[..dot], &field[dot + 1..]),
        None => (field, &b""[..]),
    };
    if int.is_empty() || frac.len() > 2 {
        return None;
    }
    let digits = |s: &[u8]| -> Option<u64> {
        s.iter().try_fold(0u64, |acc, &b| {
            b.is_ascii_digit()
                .then(|| acc.checked_mul(10)?.checked_add(u64::from(b - b'0')))
                .flatten()
        })
    };
    let mut frac_value = digits(frac)?;
    if frac.len() == 1 {
        frac_value *= 10;
    }
    digits(int)?.checked_mul(100)?.checked_add(frac_value)
}

/// Validates a record `timestamp,zone,distance_km,fare`.
fn parse_trip(rec: &csv::ByteRecord) -> Option<Trip> {
    if rec.len() != 4 {
        return None;
    }
    // `2026-03-14T08:15:02`: the hour is bytes 11..13.
    let ts = rec.get(0)?;
    if ts.len() != 19 || ts[10] != b'T' {
        return None;
    }
    let hour = std::str::from_utf8(&ts[11..13])
        .ok()?
        .parse::<usize>()
        .ok()?;
    let zone = rec.get(1)?;
    if zone.len() != 3 || zone[0] != b'Z' {
        return None;
    }
    let zone = std::str::from_utf8(&zone[1..])
        .ok()?
        .parse::<usize>()
        .ok()?;
    let distance_dam = parse_hundredths(rec.get(2)?)?;
    let fare_cents = parse_hundredths(rec.get(3)?)?;
    (hour < HOURS && zone < ZONES).then_some(Trip {
        zone,
        hour,
        fare_cents,
        distance_dam,
    })
}

// ---------------------------------------------------------------------------
// The task: one byte range of the file.

/// A task's share: the lines that start at a byte in `start..end`.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Chunk {
    path: PathBuf,
    start: u64,
    end: u64,
}

/// Reads the bytes of the lines that start in `start..end` (the first line of the
/// file, the header, excluded).
fn read_lines_starting_in(path: &Path, start: u64, end: u64) -> std::io::Result<Vec<u8>> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let end = end.min(len);
    if start >= end {
        return Ok(Vec::new());
    }
    // Read a little before `start` (to see whether a line begins there) and the
    // range itself; then extend to the end of the line running over `end`.
    let from = start.saturating_sub(1);
    file.seek(SeekFrom::Start(from))?;
    let mut buf = vec![0; (end - from) as usize];
    file.read_exact(&mut buf)?;
    let mut tail = [0u8; 4096];
    while buf.last() != Some(&b'\n') && (from + buf.len() as u64) < len {
        let n = file.read(&mut tail)?;
        if n == 0 {
            break;
        }
        match tail[..n].iter().position(|&b| b == b'\n') {
            Some(i) => buf.extend_from_slice(&tail[..=i]),
            None => buf.extend_from_slice(&tail[..n]),
        }
    }
    // The first line we own starts after the first newline at or after
    // `start - 1`; at `start == 0` that skips the header.
    let skip = match buf.iter().position(|&b| b == b'\n') {
        Some(i) => i + 1,
        None => buf.len(),
    };
    buf.drain(..skip);
    Ok(buf)
}

/// Aggregates one chunk: runs in a worker process.
fn aggregate_chunk(chunk: Chunk) -> Result<Aggregate, String> {
    let bytes = read_lines_starting_in(&chunk.path, chunk.start, chunk.end)
        .map_err(|e| format!("reading {}: {e}", chunk.path.display()))?;
    let mut agg = Aggregate::new();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(&bytes[..]);
    let mut rec = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => match parse_trip(&rec) {
                Some(trip) => agg.add(trip),
                None => agg.rejected += 1,
            },
            Err(_) => agg.rejected += 1,
        }
    }
    Ok(agg)
}

// ---------------------------------------------------------------------------
// The data set.

/// A small xorshift generator: the data set is the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Writes `rows` trips (and a few malformed lines, about 1 in 500) to `path`.
fn generate(path: &Path, rows: u64) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let partial = path.with_extension("csv.partial");
    let mut out = BufWriter::with_capacity(1 << 20, File::create(&partial)?);
    writeln!(out, "timestamp,zone,distance_km,fare")?;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for i in 0..rows {
        if i % 500 == 499 {
            // The kinds of damage real exports have.
            match rng.below(3) {
                0 => writeln!(out, "2026-02-30T25:61:00,Z99,abc,")?,
                1 => writeln!(out, "truncated")?,
                _ => writeln!(out, "2026-01-05T10:00:00,Z12,3.5,-4.00")?,
            }
            continue;
        }
        let day = rng.below(90);
        // Rush hours are busier: pick the hour from a skewed table.
        const RUSH: [u64; 14] = [0, 7, 8, 8, 9, 12, 13, 17, 17, 18, 18, 19, 22, 23];
        let hour = if rng.below(3) == 0 {
            rng.below(24)
        } else {
            RUSH[rng.below(14) as usize]
        };
        let (min, sec) = (rng.below(60), rng.below(60));
        // A few zones (the centre) get most trips.
        let zone = if rng.below(2) == 0 {
            rng.below(8)
        } else {
            rng.below(ZONES as u64)
        };
        let km_hundredths = 50 + rng.below(1500) + zone * 10;
        let fare_cents = 300 + km_hundredths * 2 + rng.below(500) + u64::from(hour >= 22) * 250;
        let (month, mday) = (1 + day / 30, 1 + day % 30);
        writeln!(
            out,
            "2026-{month:02}-{mday:02}T{hour:02}:{min:02}:{sec:02},Z{zone:02},{}.{:02},{}.{:02}",
            km_hundredths / 100,
            km_hundredths % 100,
            fare_cents / 100,
            fare_cents % 100
        )?;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&partial, path)
}

// ---------------------------------------------------------------------------
// The program.

struct Args {
    rows: u64,
    workers: usize,
    check: bool,
    json: bool,
    data: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        rows: 4_000_000,
        workers: cpu_count().max(2),
        check: false,
        json: false,
        data: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--rows" => {
                args.rows = value("--rows")?
                    .parse()
                    .map_err(|e| format!("--rows: {e}"))?
            }
            "--workers" => {
                args.workers = value("--workers")?
                    .parse()
                    .map_err(|e| format!("--workers: {e}"))?
            }
            "--check" => args.check = true,
            "--json" => args.json = true,
            "--data" => args.data = Some(value("--data")?.into()),
            "-h" | "--help" => {
                return Err(
                    "usage: analysis [--rows N] [--workers N] [--check] [--json] [--data FILE.csv]"
                        .into(),
                );
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(args)
}

fn dollars(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

fn print_row(label: &str, c: Cell, fares: &[u32]) {
    let mean = |sum: u64| sum.checked_div(c.trips).unwrap_or(0);
    println!(
        "{label:>6} {:>10} {:>9} {:>8.2} {:>8} {:>8} {:>8}",
        c.trips,
        dollars(mean(c.fare_cents)),
        mean(c.distance_dam) as f64 / 100.0,
        dollars(percentile(fares, 0.50)),
        dollars(percentile(fares, 0.90)),
        dollars(percentile(fares, 0.99)),
    );
}

fn print_report(agg: &Aggregate) {
    let header = format!(
        "{:>6} {:>10} {:>9} {:>8} {:>8} {:>8} {:>8}",
        "", "trips", "mean $", "mean km", "p50 $", "p90 $", "p99 $"
    );
    println!("\nper hour of day:\n{header}");
    for h in 0..HOURS {
        let c = agg.total(|_, hh| hh == h);
        print_row(
            &format!("{h:02}h"),
            c,
            &agg.hour_fares[h * BINS..(h + 1) * BINS],
        );
    }
    let mut zones: Vec<usize> = (0..ZONES).collect();
    zones.sort_by_key(|&z| std::cmp::Reverse(agg.total(|zz, _| zz == z).trips));
    println!("\nbusiest zones:\n{header}");
    for &z in &zones[..8] {
        let c = agg.total(|zz, _| zz == z);
        print_row(
            &format!("Z{z:02}"),
            c,
            &agg.zone_fares[z * BINS..(z + 1) * BINS],
        );
    }
    // Percentiles are bin lower edges (10-cent bins).
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let path = match &args.data {
        Some(p) => p.clone(),
        None => {
            let target = std::env::var_os("CARGO_TARGET_DIR").unwrap_or_else(|| "target".into());
            Path::new(&target)
                .join("mproc-examples")
                .join(format!("trips-{}.csv", args.rows))
        }
    };
    if !path.exists() {
        if args.data.is_some() {
            return Err(format!("{} does not exist", path.display()).into());
        }
        let t = Instant::now();
        eprintln!(
            "generating {} rows into {} (once) ...",
            args.rows,
            path.display()
        );
        generate(&path, args.rows)?;
        eprintln!("generated in {:.2?}", t.elapsed());
    }
    let len = std::fs::metadata(&path)?.len();
    let chunk = chunk_bytes(len, args.workers);
    let chunks: Vec<Chunk> = (0..len.div_ceil(chunk).max(1))
        .map(|i| Chunk {
            path: path.clone(),
            start: i * chunk,
            end: ((i + 1) * chunk).min(len),
        })
        .collect();
    let header = format!(
        "analysis: {} ({:.1} MB) in {} chunks on {} worker processes",
        path.display(),
        len as f64 / 1e6,
        chunks.len(),
        args.workers
    );
    if args.json {
        eprintln!("{header}");
    } else {
        println!("{header}");
    }

    let t = Instant::now();
    let pool = Pool::new(args.workers)?;
    let mut total = Aggregate::new();
    let partials = pool
        .options()
        .chunksize(1)
        .progress("aggregating")
        .imap_unordered(aggregate_chunk, chunks);
    for partial in partials {
        total.merge(&partial??);
    }
    let parallel = t.elapsed();
    pool.close();
    pool.join();

    if !args.json {
        print_report(&total);
    }
    let mut serial_time = None;
    if args.check {
        let t = Instant::now();
        let serial = aggregate_chunk(Chunk {
            path: path.clone(),
            start: 0,
            end: len,
        })?;
        serial_time = Some(t.elapsed());
        if serial != total {
            return Err("check FAILED: the parallel result differs from the serial one".into());
        }
    }
    if args.json {
        println!(
            "{{\"rows\":{},\"rejected\":{},\"workers\":{},\"parallel_s\":{:.6},\"serial_s\":{}}}",
            total.trips(),
            total.rejected,
            args.workers,
            parallel.as_secs_f64(),
            serial_time.map_or("null".to_string(), |t| format!("{:.6}", t.as_secs_f64()))
        );
        return Ok(());
    }
    println!(
        "\n{} trips, {} rejected lines, {:.2?} on {} processes ({:.0} MB/s)",
        total.trips(),
        total.rejected,
        parallel,
        args.workers,
        len as f64 / 1e6 / parallel.as_secs_f64()
    );

    if let Some(serial_time) = serial_time {
        println!(
            "check: the serial computation agrees ({serial_time:.2?} serially, {:.2}x faster on {} processes)",
            serial_time.as_secs_f64() / parallel.as_secs_f64(),
            args.workers
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hundredths() {
        assert_eq!(parse_hundredths(b"12.75"), Some(1275));
        assert_eq!(parse_hundredths(b"3.5"), Some(350));
        assert_eq!(parse_hundredths(b"7"), Some(700));
        assert_eq!(parse_hundredths(b"-4.00"), None);
        assert_eq!(parse_hundredths(b"1.234"), None);
        assert_eq!(parse_hundredths(b""), None);
        assert_eq!(parse_hundredths(b"abc"), None);
    }

    #[test]
    fn percentiles_read_bins() {
        let mut bins = vec![0u32; BINS];
        bins[10] = 50; // $1.00
        bins[20] = 50; // $2.00
        assert_eq!(percentile(&bins, 0.5), 100);
        assert_eq!(percentile(&bins, 0.9), 200);
    }
}

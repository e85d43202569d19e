//! A data-cleaning pipeline: a reader process streams raw customer records into a
//! bounded `JoinableQueue`, a pool of cleaner processes validates and normalises
//! them, and a writer process saves the clean rows. Bad rows are counted by
//! reason, not fatal. Mid-run, one cleaner is killed with SIGKILL: its batch is
//! run again on the worker that replaces it, and no record is lost.
//!
//! ```text
//! cargo run --release --example pipeline
//! cargo run --release --example pipeline -- --records 200000 --cleaners 4 --no-kill
//! ```
//!
//! The stages:
//!
//! ```text
//!  reader process ──JoinableQueue<Batch>──▶ parent ──Pool::imap (retries)──▶ cleaner processes
//!                                            │
//!                                            └──JoinableQueue<Vec<String>>──▶ writer process
//! ```
//!
//! Why the cleaners are a pool and not processes reading the queue themselves: a
//! process killed after it took a batch from a queue takes the batch with it. A
//! pool task lost with its worker is reported (`TaskError::is_worker_lost`) and,
//! with `retries`, run again on the replacement worker, so every batch is cleaned
//! exactly once in the output. The reader and writer end with a sentinel (`None`)
//! and `join`, as in Python.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use mproc::pool::Pool;
use mproc::process::{Process, cpu_count};
use mproc::queue::JoinableQueue;
use serde::{Deserialize, Serialize};

/// Raw lines per batch.
const BATCH: usize = 2000;

/// A batch of raw lines and the number of its first line.
#[derive(Debug, Serialize, Deserialize)]
struct Batch {
    first_line: u64,
    lines: Vec<String>,
}

/// What cleaning one batch produced.
#[derive(Debug, Serialize, Deserialize)]
struct Cleaned {
    rows: Vec<String>,
    /// Why each rejected line was rejected.
    rejected: Vec<Reject>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
enum Reject {
    FieldCount,
    BadId,
    EmptyName,
    BadEmail,
    BadAge,
    BadDate,
    UnknownCountry,
}

// ---------------------------------------------------------------------------
// Cleaning one record.

/// Normalises `id,name,email,age,signup_date,country`, or says what is wrong.
fn clean_record(line: &str) -> Result<String, Reject> {
    let fields: Vec<&str> = line.split(',').map(str::trim).collect();
    let [id, name, email, age, date, country] = fields[..] else {
        return Err(Reject::FieldCount);
    };
    let id: u64 = id.parse().map_err(|_| Reject::BadId)?;
    let name = title_case(name);
    if name.is_empty() {
        return Err(Reject::EmptyName);
    }
    let email = email.to_ascii_lowercase();
    let (user, domain) = email.split_once('@').ok_or(Reject::BadEmail)?;
    if user.is_empty() || !domain.contains('.') || domain.starts_with('.') || domain.ends_with('.')
    {
        return Err(Reject::BadEmail);
    }
    let age: u8 = age.parse().map_err(|_| Reject::BadAge)?;
    if !(13..=120).contains(&age) {
        return Err(Reject::BadAge);
    }
    let date = normalise_date(date).ok_or(Reject::BadDate)?;
    let country = country_code(country).ok_or(Reject::UnknownCountry)?;
    Ok(format!("{id},{name},{email},{age},{date},{country}"))
}

/// `  aDA   lovelace ` → `Ada Lovelace`.
fn title_case(s: &str) -> String {
    s.split_whitespace()
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f
                    .to_uppercase()
                    .chain(c.flat_map(char::to_lowercase))
                    .collect(),
                None => String::new(),
            }
        })
        .collect::<Vec<String>>()
        .join(" ")
}

/// `2024-03-07`, `2024/3/7` or `07.03.2024` → `2024-03-07`, if it is a real date.
fn normalise_date(s: &str) -> Option<String> {
    let parts: Vec<&str> = s.split(['-', '/', '.']).collect();
    let [a, b, c] = parts[..] else { return None };
    let (y, m, d) = if a.len() == 4 { (a, b, c) } else { (c, b, a) };
    let (y, m, d): (u32, u32, u32) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    ((1900..=2100).contains(&y) && (1..=12).contains(&m) && d >= 1 && d <= days[m as usize - 1])
        .then(|| format!("{y:04}-{m:02}-{d:02}"))
}

/// The ISO code of the spellings the export uses.
fn country_code(s: &str) -> Option<&'static str> {
    Some(match s.to_ascii_lowercase().as_str() {
        "us" | "usa" | "united states" => "US",
        "gb" | "uk" | "united kingdom" => "GB",
        "de" | "germany" | "deutschland" => "DE",
        "fr" | "france" => "FR",
        "jp" | "japan" => "JP",
        "br" | "brazil" | "brasil" => "BR",
        _ => return None,
    })
}

/// The cleaners' task: runs in a pool worker.
fn clean_batch(batch: Batch) -> Cleaned {
    let mut out = Cleaned {
        rows: Vec::with_capacity(batch.lines.len()),
        rejected: Vec::new(),
    };
    for line in &batch.lines {
        match clean_record(line) {
            Ok(row) => out.rows.push(row),
            Err(why) => out.rejected.push(why),
        }
    }
    out
}

// ---------------------------------------------------------------------------
// The reader and writer processes.

/// Streams the file into `queue` in batches, then the sentinel; returns how many
/// records (lines after the header) it read.
fn read_records((path, queue): (PathBuf, JoinableQueue<Option<Batch>>)) -> Result<u64, String> {
    let file = File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut lines = BufReader::with_capacity(1 << 20, file).lines();
    lines.next(); // the header
    let mut batch = Batch {
        first_line: 2,
        lines: Vec::with_capacity(BATCH),
    };
    let mut n = 0u64;
    for line in lines {
        batch.lines.push(line.map_err(|e| e.to_string())?);
        n += 1;
        if batch.lines.len() == BATCH {
            let next = Batch {
                first_line: batch.first_line + BATCH as u64,
                lines: Vec::with_capacity(BATCH),
            };
            queue
                .put(Some(std::mem::replace(&mut batch, next)))
                .map_err(|e| e.to_string())?;
        }
    }
    if !batch.lines.is_empty() {
        queue.put(Some(batch)).map_err(|e| e.to_string())?;
    }
    queue.put(None).map_err(|e| e.to_string())?;
    Ok(n)
}

/// Saves clean rows from `queue` until the sentinel; returns how many it wrote.
fn write_rows((path, queue): (PathBuf, JoinableQueue<Option<Vec<String>>>)) -> Result<u64, String> {
    let file = File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let io = |e: std::io::Error| e.to_string();
    writeln!(out, "id,name,email,age,signup_date,country").map_err(io)?;
    let mut n = 0u64;
    loop {
        let item = queue.get().map_err(|e| e.to_string())?;
        let Some(rows) = item else {
            queue.task_done().map_err(|e| e.to_string())?;
            break;
        };
        for row in &rows {
            writeln!(out, "{row}").map_err(io)?;
        }
        n += rows.len() as u64;
        queue.task_done().map_err(|e| e.to_string())?;
    }
    out.flush().map_err(io)?;
    Ok(n)
}

// ---------------------------------------------------------------------------
// The data set.

/// Writes `n` raw records with the flaws real exports have (about 4% bad).
fn generate(path: &Path, n: u64) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let partial = path.with_extension("csv.partial");
    let mut out = BufWriter::new(File::create(&partial)?);
    writeln!(out, "id,name,email,age,signup_date,country")?;
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut rnd = |k: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % k
    };
    const FIRST: [&str; 8] = [
        "ada", "ALAN", "grace", "Edsger", "barbara", "ken", "dennis", "margaret",
    ];
    const LAST: [&str; 8] = [
        "lovelace", "turing", "HOPPER", "dijkstra", "liskov", "thompson", "ritchie", "hamilton",
    ];
    const COUNTRY: [&str; 9] = [
        "US",
        "usa",
        "United States",
        "uk",
        "Germany",
        "fr",
        "Japan",
        "brasil",
        "GB",
    ];
    for id in 1..=n {
        let (f, l) = (FIRST[rnd(8) as usize], LAST[rnd(8) as usize]);
        let email = format!("{}.{}@Example.com", f, l);
        let age = 18 + rnd(60);
        let (y, m, d) = (2015 + rnd(10), 1 + rnd(12), 1 + rnd(28));
        let date = match rnd(3) {
            0 => format!("{y}-{m:02}-{d:02}"),
            1 => format!("{y}/{m}/{d}"),
            _ => format!("{d:02}.{m:02}.{y}"),
        };
        let country = COUNTRY[rnd(9) as usize];
        let line = match rnd(100) {
            0 => format!("{id},{f} {l},{f}.example.com,{age},{date},{country}"), // no @
            1 => format!("{id},{f} {l},{email},{},{date},{country}", 150 + rnd(50)),
            2 => format!("{id},{f} {l},{email},{age},{y}-02-30,{country}"),
            3 => format!("{id},{f} {l},{email},{age},{date}"), // a field missing
            _ => format!("{id}, {f}  {l} ,{email},{age},{date},{country}"),
        };
        writeln!(out, "{line}")?;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&partial, path)
}

// ---------------------------------------------------------------------------
// The program.

struct Args {
    records: u64,
    cleaners: usize,
    kill: bool,
    dir: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let target = std::env::var_os("CARGO_TARGET_DIR").unwrap_or_else(|| "target".into());
    let mut args = Args {
        records: 1_000_000,
        cleaners: cpu_count().max(2),
        kill: true,
        dir: Path::new(&target).join("mproc-examples"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--records" => {
                args.records = value("--records")?
                    .parse()
                    .map_err(|e| format!("--records: {e}"))?
            }
            "--cleaners" => {
                args.cleaners = value("--cleaners")?
                    .parse()
                    .map_err(|e| format!("--cleaners: {e}"))?
            }
            "--no-kill" => args.kill = false,
            "--dir" => args.dir = value("--dir")?.into(),
            "-h" | "--help" => {
                return Err(
                    "usage: pipeline [--records N] [--cleaners N] [--no-kill] [--dir DIR]".into(),
                );
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(args)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let input = args.dir.join(format!("customers-{}.csv", args.records));
    let output = args
        .dir
        .join(format!("customers-{}.clean.csv", args.records));
    if !input.exists() {
        eprintln!(
            "generating {} raw records into {} (once) ...",
            args.records,
            input.display()
        );
        generate(&input, args.records)?;
    }
    println!(
        "pipeline: {} -> {} cleaner processes -> {}",
        input.display(),
        args.cleaners,
        output.display()
    );
    let t = Instant::now();

    // Bounded queues: a slow stage holds the faster one back instead of letting
    // memory grow.
    let raw: JoinableQueue<Option<Batch>> = JoinableQueue::bounded(16)?;
    let clean: JoinableQueue<Option<Vec<String>>> = JoinableQueue::bounded(16)?;
    let reader = Process::builder()
        .name("reader")
        .start(read_records, (input.clone(), raw.clone()))?;
    let writer = Process::builder()
        .name("writer")
        .start(write_rows, (output.clone(), clean.clone()))?;

    let pool = Pool::builder()
        .processes(args.cleaners)
        .name("cleaner")
        .build()?;
    // Batches from the reader, until its sentinel.
    let batches = std::iter::from_fn(|| {
        let item = raw.get().ok()?;
        raw.task_done().ok()?;
        item
    });
    let mut rejected: BTreeMap<Reject, u64> = BTreeMap::new();
    let (mut cleaned, mut done) = (0u64, 0u64);
    let mut killed = None;
    // A batch lost with its worker runs again on the replacement (`retries`).
    for result in pool.options().retries(3).imap(clean_batch, batches) {
        let batch = result?;
        cleaned += batch.rows.len() as u64;
        for why in batch.rejected {
            *rejected.entry(why).or_default() += 1;
        }
        clean.put(Some(batch.rows)).map_err(|e| e.to_string())?;
        done += 1;
        // A fifth of the way in, SIGKILL one cleaner while it works.
        if args.kill && killed.is_none() && done == (args.records / BATCH as u64 / 5).max(1) {
            let victim = pool.worker_pids()[0];
            let pid = rustix::process::Pid::from_raw(victim as i32).ok_or("bad pid")?;
            rustix::process::kill_process(pid, rustix::process::Signal::KILL)?;
            println!("killed cleaner pid {victim} with SIGKILL after {done} batches");
            killed = Some(victim);
        }
    }
    clean.put(None).map_err(|e| e.to_string())?;
    clean.join();
    let read = reader.join()??;
    let written = writer.join()??;
    let elapsed = t.elapsed();
    let replaced = pool.replaced_workers();
    pool.close();
    pool.join();

    let n_rejected: u64 = rejected.values().sum();
    println!("records in:   {read}");
    println!("clean out:    {written} (cleaned {cleaned})");
    println!("rejected:     {n_rejected}");
    for (why, n) in &rejected {
        println!("  {why:?}: {n}");
    }
    if killed.is_some() {
        println!("cleaners replaced after the kill: {replaced}");
    }
    println!(
        "{:.2?} ({:.0} records/s)",
        elapsed,
        read as f64 / elapsed.as_secs_f64()
    );
    if read != written + n_rejected || cleaned != written {
        return Err(format!(
            "counts do not add up: {read} in, {written} written + {n_rejected} rejected"
        )
        .into());
    }
    println!("in = out + rejected: every record accounted for");
    Ok(())
}

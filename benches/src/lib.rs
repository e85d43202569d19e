//! Benchmark harness for mproc (parking_lot-style custom runners, no framework).
//!
//! Every area (`process`, `queue`, `pipe`, `sync`, `pool`) is one module that builds an [`Area`]:
//! a list of [`Contender`]s (mproc, the OS floor in `benches/c/os_*.c`, Python's
//! `multiprocessing` in `benches/py/py_*.py`, and in-process Rust) and a list of
//! [`Compare`]s (mproc figure against another figure, with the target). [`run_area`]
//! runs every contender once per round, interleaved and in a rotating order, for `ROUNDS`
//! rounds; a contender reports one value per figure per round (the median of its `REPEATS`
//! samples in that round). The result of a figure is the median over rounds, its spread the
//! min/max of the round values.
//!
//! Output: TSV lines `name<TAB>value<TAB>unit` on stdout (figures, then ratios), a human
//! table and progress on stderr, and, when `BENCH_MD` names a file, a Markdown section for
//! `BENCHMARKS.md` (written by `scripts/bench.sh`).
//!
//! Environment: `ROUNDS` (default 3), `REPEATS` (samples per figure per round, default 3;
//! also passed to the anchors), `PYTHON` (default `python3`), `PYFLAGS` (default `-S`),
//! `CC`/`CFLAGS` (default `gcc`, `-O2 -Wall -Wextra`), `MPROC_ANCHORS` (a folder laid out
//! like `benches/`, with `c/` and `py/`; default this crate's folder), `MPROC_BENCH_BUILD` (where the C anchors are
//! built, default `<target>/anchors`), `BENCH_MD`, `BASELINES=1` (also run areas whose mproc
//! side has not landed, to measure their comparison sides).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub mod aio;
pub mod anchors;
pub mod distributed;
pub mod manager;
pub mod observe;
pub mod pipe;
pub mod pool;
pub mod process;
pub mod programs;
pub mod queue;
pub mod scaling_executor;
pub mod scaling_pool;
pub mod scaling_queue;
pub mod scaling_start;
pub mod scaling_sync;
pub mod sync;
pub mod threading;
pub mod units;

/// Error type of the harness: anything that explains itself.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
/// Result type of the harness.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Who a contender stands for; ratios are `mproc/<role>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The code under test.
    Mproc,
    /// Python's `multiprocessing` / `concurrent.futures` doing the same work.
    Python,
    /// The operating system's limit (C programs, a bare Rust binary).
    Floor,
    /// In-process Rust (threads: crossbeam, rayon, std), the upper bound.
    InProcess,
}

impl Role {
    /// Short label used in tables.
    pub fn label(self) -> &'static str {
        match self {
            Role::Mproc => "mproc",
            Role::Python => "python",
            Role::Floor => "floor",
            Role::InProcess => "in-process",
        }
    }
}

/// One measured value.
#[derive(Clone, Debug)]
pub struct Figure {
    /// Figure name, unique across the run (`mproc_process_start_join_fork`).
    pub name: String,
    /// The value, in `unit`.
    pub value: f64,
    /// Unit as the anchors write it (`us/process`, `msgs/s`, `MB/s`, `ns/op`, `x`, `MB`).
    pub unit: String,
}

/// Run parameters, read from the environment (see the crate docs).
#[derive(Clone, Debug)]
pub struct Config {
    /// Rounds over all contenders.
    pub rounds: usize,
    /// Samples per figure per round (also `REPEATS` for the anchors).
    pub repeats: usize,
    /// Python interpreter.
    pub python: String,
    /// Python flags (`-S` by default: a clean CPython, no site hooks).
    pub pyflags: Vec<String>,
    /// C compiler and flags for the anchors.
    pub cc: String,
    /// C flags.
    pub cflags: Vec<String>,
    /// The comparison programs' folder (this crate's, `benches/`): `c/os_*.c` and
    /// `py/py_*.py`.
    pub anchors: PathBuf,
    /// Where the C anchors are built.
    pub build_dir: PathBuf,
    /// Markdown output for `BENCHMARKS.md`.
    pub markdown: Option<PathBuf>,
    /// Also run areas whose mproc side has not landed.
    pub baselines: bool,
    /// Limit for one run of an external program.
    pub timeout: Duration,
}

impl Config {
    /// Reads the environment.
    pub fn from_env() -> Result<Config> {
        let num = |k: &str, d: usize| -> Result<usize> {
            match std::env::var(k) {
                Ok(v) if !v.trim().is_empty() => {
                    let n: usize = v
                        .trim()
                        .parse()
                        .map_err(|_| format!("{k}={v:?} is not a number"))?;
                    Ok(n.max(1))
                }
                _ => Ok(d),
            }
        };
        let words = |k: &str, d: &str| -> Vec<String> {
            std::env::var(k)
                .unwrap_or_else(|_| d.to_owned())
                .split_whitespace()
                .map(str::to_owned)
                .collect()
        };
        let anchors = match std::env::var_os("MPROC_ANCHORS") {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")),
        };
        for needed in [["c", "floor.h"], ["py", "_bench.py"]] {
            let path = anchors.join(needed[0]).join(needed[1]);
            if !path.is_file() {
                return Err(format!(
                    "comparison programs not found: {} is missing (MPROC_ANCHORS must name a folder laid out like benches/)",
                    path.display()
                )
                .into());
            }
        }
        let build_dir = match std::env::var_os("MPROC_BENCH_BUILD") {
            Some(p) => PathBuf::from(p),
            None => {
                let exe = std::env::current_exe()?;
                // target/<profile>/<bin> -> target/anchors
                let target = exe
                    .parent()
                    .and_then(|p| p.parent())
                    .ok_or("current_exe has no target dir")?;
                target.join("anchors")
            }
        };
        Ok(Config {
            rounds: num("ROUNDS", 3)?,
            repeats: num("REPEATS", 3)?,
            python: std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned()),
            pyflags: words("PYFLAGS", "-S"),
            cc: std::env::var("CC").unwrap_or_else(|_| "gcc".to_owned()),
            cflags: words("CFLAGS", "-O2 -Wall -Wextra"),
            anchors,
            build_dir,
            markdown: std::env::var_os("BENCH_MD")
                .filter(|s| !s.is_empty())
                .map(PathBuf::from),
            baselines: std::env::var("BASELINES").is_ok_and(|v| v == "1"),
            timeout: Duration::from_secs(600),
        })
    }
}

/// A participant in a benchmark area: produces one value per figure per round.
///
/// In-process contenders are usually a [`Local`]; the anchors are [`anchors::CAnchor`] and
/// [`anchors::PyAnchor`], which run a program per round and parse its `name<TAB>median<TAB>unit`.
pub trait Contender {
    /// Human label (`python py_process_start.py`, `mproc Process`).
    fn label(&self) -> String;
    /// Whom this contender stands for.
    fn role(&self) -> Role;
    /// One-time set-up before the first round (build a program, start a server, warm up).
    fn prepare(&mut self, _cfg: &Config) -> Result<()> {
        Ok(())
    }
    /// One round: each figure's value for this round.
    fn round(&mut self, cfg: &Config) -> Result<Vec<Figure>>;
}

type SampleFn = Box<dyn FnMut() -> Result<f64>>;

/// An in-process contender: named measures, each sampled `REPEATS` times per round
/// (interleaved sample by sample), reporting the median of those samples.
pub struct Local {
    label: String,
    role: Role,
    warmup: Option<Box<dyn FnMut() -> Result<()>>>,
    measures: Vec<(String, String, SampleFn)>,
}

impl Local {
    /// A contender with no measures yet.
    pub fn new(label: impl Into<String>, role: Role) -> Local {
        Local {
            label: label.into(),
            role,
            warmup: None,
            measures: Vec::new(),
        }
    }

    /// Work run once before the first round and not timed.
    pub fn warmup(mut self, f: impl FnMut() -> Result<()> + 'static) -> Local {
        self.warmup = Some(Box::new(f));
        self
    }

    /// Adds a figure; `sample` runs the workload once and returns the value in `unit`.
    pub fn measure(
        mut self,
        name: impl Into<String>,
        unit: impl Into<String>,
        sample: impl FnMut() -> Result<f64> + 'static,
    ) -> Local {
        self.measures
            .push((name.into(), unit.into(), Box::new(sample)));
        self
    }
}

impl Contender for Local {
    fn label(&self) -> String {
        self.label.clone()
    }

    fn role(&self) -> Role {
        self.role
    }

    fn prepare(&mut self, _cfg: &Config) -> Result<()> {
        match self.warmup.as_mut() {
            Some(w) => w(),
            None => Ok(()),
        }
    }

    fn round(&mut self, cfg: &Config) -> Result<Vec<Figure>> {
        let mut samples = vec![Vec::with_capacity(cfg.repeats); self.measures.len()];
        for _ in 0..cfg.repeats {
            for (i, (name, _, f)) in self.measures.iter_mut().enumerate() {
                let v = f().map_err(|e| format!("{name}: {e}"))?;
                samples[i].push(v);
            }
        }
        Ok(self
            .measures
            .iter()
            .zip(samples)
            .map(|((name, unit, _), s)| Figure {
                name: name.clone(),
                value: median(&s),
                unit: unit.clone(),
            })
            .collect())
    }
}

/// Ends the benchmark with a message when it is not disarmed (dropped) in time: for
/// in-process workloads that would wait forever if a child process died.
pub struct Watchdog {
    disarm: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    /// Arms a watchdog: after `limit`, the process prints what hung and exits with status 2.
    pub fn arm(limit: Duration, what: &str) -> Watchdog {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let what = what.to_owned();
        let thread = std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
                eprintln!(
                    "error: watchdog: {what} did not finish within {} s",
                    limit.as_secs()
                );
                std::process::exit(2);
            }
        });
        Watchdog {
            disarm: Some(tx),
            thread: Some(thread),
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.disarm.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Times `n` runs of `op` and returns the mean time per run.
pub fn time_per_op(n: usize, mut op: impl FnMut() -> Result<()>) -> Result<Duration> {
    let t0 = Instant::now();
    for _ in 0..n {
        op()?;
    }
    Ok(t0.elapsed() / n as u32)
}

/// Median of `xs` (NaN for an empty slice).
pub fn median(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let mut s = xs.to_vec();
    s.sort_by(f64::total_cmp);
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    }
}

/// The bound an issue puts on `mproc / other` (both in the mproc figure's unit).
#[derive(Clone, Copy, Debug)]
pub enum Target {
    /// `mproc / other <= bound` (latencies, memory: "within 2x of the floor", "10x faster").
    AtMost(f64),
    /// `mproc / other >= bound` (throughputs, speedups: "at least 50x Python").
    AtLeast(f64),
}

impl Target {
    fn met(self, ratio: f64) -> bool {
        match self {
            Target::AtMost(b) => ratio <= b,
            Target::AtLeast(b) => ratio >= b,
        }
    }

    fn text(self) -> String {
        match self {
            Target::AtMost(b) => format!("≤ {}", fmt_bound(b)),
            Target::AtLeast(b) => format!("≥ {}", fmt_bound(b)),
        }
    }
}

/// One row of an area's result table: an mproc figure against another figure.
#[derive(Clone, Debug)]
pub struct Compare {
    /// The mproc figure.
    pub mproc: String,
    /// The figure it is compared with.
    pub other: String,
    /// The target on `mproc / other`, if any.
    pub target: Option<Target>,
    /// What the target says in words (`issue 2: within 2x of fork+waitpid`).
    pub note: String,
}

impl Compare {
    /// An informative comparison, without a target.
    pub fn new(mproc: impl Into<String>, other: impl Into<String>) -> Compare {
        Compare {
            mproc: mproc.into(),
            other: other.into(),
            target: None,
            note: String::new(),
        }
    }

    /// Target: `mproc / other <= bound`.
    pub fn at_most(mut self, bound: f64, note: impl Into<String>) -> Compare {
        self.target = Some(Target::AtMost(bound));
        self.note = note.into();
        self
    }

    /// Target: `mproc / other >= bound`.
    pub fn at_least(mut self, bound: f64, note: impl Into<String>) -> Compare {
        self.target = Some(Target::AtLeast(bound));
        self.note = note.into();
        self
    }
}

/// A benchmark area: what runs, and how it is judged.
pub struct Area {
    /// Short name (`process_start`), also the binary's name.
    pub name: &'static str,
    /// Section title in `BENCHMARKS.md`.
    pub title: &'static str,
    /// What is measured and how (Markdown, a few lines).
    pub description: String,
    /// `Some(reason)` while the mproc side is not written yet (the area is then skipped
    /// unless `BASELINES=1`, and no mproc figure is ever reported for it).
    pub mproc_pending: Option<&'static str>,
    /// The contenders.
    pub contenders: Vec<Box<dyn Contender>>,
    /// The result rows.
    pub comparisons: Vec<Compare>,
}

/// Round values of one figure.
#[derive(Clone, Debug)]
pub struct Stats {
    /// Figure name.
    pub name: String,
    /// Unit.
    pub unit: String,
    /// Role of the contender that produced it.
    pub role: Role,
    /// Label of that contender.
    pub contender: String,
    /// One value per round that produced it.
    pub rounds: Vec<f64>,
}

impl Stats {
    /// Median over rounds.
    pub fn median(&self) -> f64 {
        median(&self.rounds)
    }
    /// Smallest round value.
    pub fn min(&self) -> f64 {
        self.rounds.iter().copied().fold(f64::INFINITY, f64::min)
    }
    /// Largest round value.
    pub fn max(&self) -> f64 {
        self.rounds
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max)
    }
}

/// Everything measured in one area run.
pub struct Results {
    /// Per figure, in first-seen order.
    pub figures: Vec<Stats>,
    /// Contender failures (`round k: label: error`).
    pub failures: Vec<String>,
}

impl Results {
    /// The figure named `name`, if measured.
    pub fn get(&self, name: &str) -> Option<&Stats> {
        self.figures.iter().find(|s| s.name == name)
    }

    fn add(&mut self, role: Role, contender: &str, f: Figure) {
        match self.figures.iter_mut().find(|s| s.name == f.name) {
            Some(s) => s.rounds.push(f.value),
            None => self.figures.push(Stats {
                name: f.name,
                unit: f.unit,
                role,
                contender: contender.to_owned(),
                rounds: vec![f.value],
            }),
        }
    }
}

/// Runs an area: prepare, `ROUNDS` interleaved rounds, then TSV, table and Markdown.
///
/// This is the whole `main` of an area binary. It exits with status 1 when a contender
/// failed (the figures of the others are still printed).
pub fn run_area(make: impl FnOnce(&Config) -> Result<Area>) {
    if let Err(e) = try_run_area(make) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn try_run_area(make: impl FnOnce(&Config) -> Result<Area>) -> Result<()> {
    let cfg = Config::from_env()?;
    if cfg!(debug_assertions) {
        eprintln!("warning: this is not a release build; its figures mean nothing (use --release)");
    }
    let mut area = make(&cfg)?;
    if let Some(reason) = area.mproc_pending
        && !cfg.baselines
    {
        eprintln!(
            "{}: skipped, mproc side pending ({reason}); BASELINES=1 measures the other sides",
            area.name
        );
        if let Some(md) = &cfg.markdown {
            std::fs::write(md, markdown_pending(&area, reason))?;
        }
        return Ok(());
    }
    let mut res = Results {
        figures: Vec::new(),
        failures: Vec::new(),
    };
    let n = area.contenders.len();
    let mut ok = vec![true; n];
    for (i, c) in area.contenders.iter_mut().enumerate() {
        let t0 = Instant::now();
        eprint!("{}: prepare {} ... ", area.name, c.label());
        match c.prepare(&cfg) {
            Ok(()) => eprintln!("{:.1} s", t0.elapsed().as_secs_f64()),
            Err(e) => {
                eprintln!("FAILED: {e}");
                res.failures.push(format!("prepare: {}: {e}", c.label()));
                ok[i] = false;
            }
        }
    }
    for r in 0..cfg.rounds {
        // Rotate the order each round so no contender always runs right after another.
        for k in 0..n {
            let i = (k + r) % n;
            if !ok[i] {
                continue;
            }
            let c = &mut area.contenders[i];
            let t0 = Instant::now();
            eprint!(
                "{}: round {}/{}: {} ... ",
                area.name,
                r + 1,
                cfg.rounds,
                c.label()
            );
            match c.round(&cfg) {
                Ok(figs) => {
                    eprintln!("{:.1} s", t0.elapsed().as_secs_f64());
                    let (role, label) = (c.role(), c.label());
                    for f in figs {
                        res.add(role, &label, f);
                    }
                }
                Err(e) => {
                    eprintln!("FAILED: {e}");
                    res.failures
                        .push(format!("round {}: {}: {e}", r + 1, c.label()));
                }
            }
        }
    }
    if area.mproc_pending.is_some() && res.figures.iter().any(|s| s.role == Role::Mproc) {
        return Err("an area marked mproc_pending reported an mproc figure".into());
    }
    print!("{}", tsv(&area, &res));
    eprint!("{}", human(&area, &res, &cfg));
    if let Some(md) = &cfg.markdown {
        std::fs::write(md, markdown(&area, &res, &cfg))?;
    }
    if !res.failures.is_empty() {
        return Err(format!(
            "{} contender run(s) failed: {}",
            res.failures.len(),
            res.failures.join("; ")
        )
        .into());
    }
    Ok(())
}

/// A comparison evaluated against the results.
struct Row<'a> {
    cmp: &'a Compare,
    mproc: Option<&'a Stats>,
    other: Option<&'a Stats>,
    /// `mproc / other` in the mproc figure's unit.
    ratio: Option<f64>,
}

fn rows<'a>(area: &'a Area, res: &'a Results) -> Vec<Row<'a>> {
    area.comparisons
        .iter()
        .map(|cmp| {
            let mproc = res.get(&cmp.mproc);
            let other = res.get(&cmp.other);
            let ratio = match (mproc, other) {
                (Some(m), Some(o)) => {
                    units::convert(o.median(), &o.unit, &m.unit).map(|o_in_m| m.median() / o_in_m)
                }
                _ => None,
            };
            Row {
                cmp,
                mproc,
                other,
                ratio,
            }
        })
        .collect()
}

/// "3.2x faster" / "1.4x slower" / "2.1x more", from a ratio and the unit's direction.
fn in_words(ratio: f64, unit: &str) -> String {
    let (better, worse) = if units::lower_is_better(unit) {
        (ratio <= 1.0, ratio > 1.0)
    } else {
        (ratio >= 1.0, ratio < 1.0)
    };
    let factor = if ratio >= 1.0 { ratio } else { 1.0 / ratio };
    let noun = if units::is_memory(unit) {
        if ratio <= 1.0 { "smaller" } else { "larger" }
    } else if better {
        "better"
    } else if worse {
        "worse"
    } else {
        "equal"
    };
    let factor = if factor >= 100.0 {
        format!("{factor:.0}")
    } else if factor >= 10.0 {
        format!("{factor:.1}")
    } else {
        format!("{factor:.2}")
    };
    format!("{factor}× {noun}")
}

fn tsv(area: &Area, res: &Results) -> String {
    let mut out = String::new();
    for s in &res.figures {
        let _ = writeln!(out, "{}\t{}\t{}", s.name, fmt_num(s.median()), s.unit);
    }
    for row in rows(area, res) {
        if let Some(r) = row.ratio {
            let _ = writeln!(
                out,
                "ratio:{}/{}\t{}\tx",
                row.cmp.mproc,
                row.cmp.other,
                fmt_num(r)
            );
        }
    }
    out
}

fn human(area: &Area, res: &Results, cfg: &Config) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n== {} ({} rounds x {} samples) ==",
        area.title, cfg.rounds, cfg.repeats
    );
    let _ = writeln!(
        out,
        "{:<44} {:<11} {:>11} {:>11} {:>11}  unit",
        "figure", "role", "median", "min", "max"
    );
    for s in &res.figures {
        let _ = writeln!(
            out,
            "{:<44} {:<11} {:>11} {:>11} {:>11}  {}",
            s.name,
            s.role.label(),
            fmt_num(s.median()),
            fmt_num(s.min()),
            fmt_num(s.max()),
            s.unit
        );
    }
    let _ = writeln!(
        out,
        "\n{:<42} {:<52} {:>8} {:<14} {:<8} met",
        "mproc figure", "against", "ratio", "", "target"
    );
    for row in rows(area, res) {
        let against = match row.other {
            Some(o) => format!("{} ({})", row.cmp.other, o.role.label()),
            None => format!("{} (not measured)", row.cmp.other),
        };
        let (ratio, words) = match (row.ratio, row.mproc) {
            (Some(r), Some(m)) => (fmt_num(r), in_words(r, &m.unit)),
            _ => ("-".to_owned(), String::new()),
        };
        let _ = writeln!(
            out,
            "{:<42} {:<52} {:>8} {:<14} {:<8} {}",
            row.cmp.mproc,
            against,
            ratio,
            words,
            row.cmp.target.map(Target::text).unwrap_or_default(),
            met_text(&row)
        );
    }
    out
}

fn met_text(row: &Row<'_>) -> &'static str {
    match (row.cmp.target, row.ratio) {
        (None, _) => "",
        (Some(_), None) => "not measured",
        (Some(t), Some(r)) => {
            if t.met(r) {
                "met"
            } else {
                "NOT met"
            }
        }
    }
}

fn with_spread(s: &Stats) -> String {
    if s.rounds.len() > 1 {
        format!(
            "{} {} [{}–{}]",
            fmt_num(s.median()),
            s.unit,
            fmt_num(s.min()),
            fmt_num(s.max())
        )
    } else {
        format!("{} {}", fmt_num(s.median()), s.unit)
    }
}

fn markdown(area: &Area, res: &Results, cfg: &Config) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## {}\n", area.title);
    let _ = writeln!(out, "{}\n", area.description.trim());
    let _ = writeln!(
        out,
        "{} rounds, interleaved; a round value is the median of {} samples (Python and C: of their own \
         `REPEATS={}` samples); shown: median over rounds [min–max of the round values]. \
         Ratio = mproc / the other figure, in the mproc figure's unit.\n",
        cfg.rounds, cfg.repeats, cfg.repeats
    );
    if let Some(reason) = area.mproc_pending {
        let _ = writeln!(
            out,
            "**mproc side pending** ({reason}): only the comparison sides were measured.\n"
        );
    }
    {
        let _ = writeln!(
            out,
            "| mproc figure | mproc | against | its median | mproc/it | in words | target | met |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
        let missing = if area.mproc_pending.is_some() {
            "pending"
        } else {
            "not measured"
        };
        for row in rows(area, res) {
            let m = row
                .mproc
                .map(with_spread)
                .unwrap_or_else(|| missing.to_owned());
            let o = row
                .other
                .map(with_spread)
                .unwrap_or_else(|| "not measured".to_owned());
            let role = row.other.map(|o| o.role.label()).unwrap_or("");
            let (ratio, words) = match (row.ratio, row.mproc) {
                (Some(r), Some(m)) => (fmt_num(r), in_words(r, &m.unit)),
                _ => ("–".to_owned(), String::new()),
            };
            let target = match row.cmp.target {
                Some(t) if row.cmp.note.is_empty() => t.text(),
                Some(t) => format!("{} ({})", t.text(), row.cmp.note),
                None => "–".to_owned(),
            };
            let _ = writeln!(
                out,
                "| `{}` | {m} | `{}` ({role}) | {o} | {ratio} | {words} | {target} | {} |",
                row.cmp.mproc,
                row.cmp.other,
                match met_text(&row) {
                    "" => "–",
                    "not measured" => missing,
                    t => t,
                }
            );
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(out, "<details><summary>All figures of this run</summary>\n");
    let _ = writeln!(
        out,
        "| figure | role | median | min | max | unit | rounds |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    for s in &res.figures {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} | {} | {} |",
            s.name,
            s.role.label(),
            fmt_num(s.median()),
            fmt_num(s.min()),
            fmt_num(s.max()),
            s.unit,
            s.rounds.len()
        );
    }
    let _ = writeln!(out, "\n</details>\n");
    if !res.failures.is_empty() {
        let _ = writeln!(out, "**Failures in this run:**\n");
        for f in &res.failures {
            let _ = writeln!(out, "- {f}");
        }
        let _ = writeln!(out);
    }
    out
}

fn markdown_pending(area: &Area, reason: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## {}\n", area.title);
    let _ = writeln!(out, "{}\n", area.description.trim());
    let _ = writeln!(
        out,
        "**Not measured yet**: the mproc side is pending ({reason}). The Python, OS-floor and in-process \
         sides are written (`BASELINES=1 scripts/bench.sh` measures them). Targets:\n"
    );
    let _ = writeln!(out, "| mproc figure | against | target |");
    let _ = writeln!(out, "|---|---|---|");
    for c in &area.comparisons {
        let target = match c.target {
            Some(t) if c.note.is_empty() => t.text(),
            Some(t) => format!("{} ({})", t.text(), c.note),
            None => "– (for reference)".to_owned(),
        };
        let _ = writeln!(out, "| `{}` | `{}` | {target} |", c.mproc, c.other);
    }
    let _ = writeln!(out);
    out
}

/// A target bound without trailing zeros (`2`, `0.3`, `0.333`).
fn fmt_bound(b: f64) -> String {
    let s = format!("{b:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Formats like the anchors do (`%.0f` from 10000, `%.1f` from 100, `%.3f` from 1, else 4
/// significant digits).
pub fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if !v.is_finite() {
        format!("{v}")
    } else if a >= 10000.0 {
        format!("{v:.0}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.3}")
    } else if a == 0.0 {
        "0".to_owned()
    } else {
        let digits = (3 - a.log10().floor() as i32).max(0) as usize;
        format!("{v:.digits$}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_format() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(fmt_num(12345.6), "12346");
        assert_eq!(fmt_num(123.46), "123.5");
        assert_eq!(fmt_bound(50.0), "50");
        assert_eq!(fmt_bound(1.0 / 3.0), "0.333");
        assert_eq!(fmt_bound(0.3), "0.3");
        assert_eq!(fmt_num(1.5), "1.500");
        assert_eq!(fmt_num(0.012345), "0.01235");
    }

    #[test]
    fn words() {
        assert_eq!(in_words(0.1, "us/process"), "10.0× better");
        assert_eq!(in_words(2.0, "us/process"), "2.00× worse");
        assert_eq!(in_words(50.0, "msgs/s"), "50.0× better");
        assert_eq!(in_words(0.25, "MB"), "4.00× smaller");
    }
}

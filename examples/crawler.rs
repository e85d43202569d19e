//! The asyncio-with-processes pattern, made real: a tokio program crawls a web site
//! while a process pool parses the pages.
//!
//! The example starts its own small web server (hyper, on 127.0.0.1, a free port)
//! serving a generated site: page `n` has a few paragraphs and links to other pages.
//! The crawler fetches pages concurrently on the runtime (I/O-bound, async), hands
//! each page to a process pool to parse (CPU-bound: tokenising, counting words,
//! finding links), awaits the parse without blocking the runtime
//! (`AsyncResult` is a future), and follows the links breadth-first to a depth.
//! At the end it checks that it found exactly the pages a breadth-first walk of
//! the generated site reaches, and prints pages per second.
//!
//! ```text
//! cargo run --release --example crawler                 # 3000-page site, depth 6
//! cargo run --release --example crawler -- --pages 20000 --depth 8 --workers 4 --concurrency 64
//! ```

use std::collections::{HashSet, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use mproc::pool::Pool;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

struct Args {
    pages: u32,
    depth: u32,
    workers: usize,
    concurrency: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        pages: 3000,
        depth: 6,
        workers: mproc::process::cpu_count().max(1),
        concurrency: 32,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = |what: &str| {
            value
                .parse::<u64>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| format!("{what} must be a positive number, not {value:?}"))
        };
        match flag.as_str() {
            "--pages" => args.pages = number("--pages")?.min(u64::from(u32::MAX)) as u32,
            "--depth" => args.depth = number("--depth")?.min(64) as u32,
            "--workers" => args.workers = number("--workers")? as usize,
            "--concurrency" => args.concurrency = number("--concurrency")? as usize,
            _ => {
                return Err(format!(
                    "unknown option {flag}; options: --pages N --depth D --workers W --concurrency C"
                ));
            }
        }
    }
    Ok(args)
}

// ---- the site ------------------------------------------------------------------

/// The pages page `n` links to, in a site of `pages` pages: a few "near" pages and
/// a few far ones, so that the site is a graph with cycles, not a tree.
fn links_of(n: u32, pages: u32) -> Vec<u32> {
    let n = u64::from(n);
    let p = u64::from(pages);
    let mut out: Vec<u32> = [
        (n * 3 + 1) % p,
        (n * 3 + 2) % p,
        (n * 7 + 11) % p,
        (n * n + 5) % p,
        n / 2,
    ]
    .into_iter()
    .map(|x| x as u32)
    .collect();
    out.sort_unstable();
    out.dedup();
    out
}

const WORDS: [&str; 16] = [
    "process", "pool", "queue", "pipe", "lock", "event", "future", "await", "worker", "signal",
    "memory", "shared", "crawler", "parse", "token", "reactor",
];

/// The HTML of page `n`: paragraphs of words (about 20 KB) with the links spread
/// through them.
fn render(n: u32, pages: u32) -> String {
    let mut html = format!("<html><head><title>page {n}</title></head><body><h1>Page {n}</h1>\n");
    let links = links_of(n, pages);
    let mut x = u64::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for para in 0..24 {
        html.push_str("<p>");
        for _ in 0..120 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            html.push_str(WORDS[(x % 16) as usize]);
            html.push(' ');
        }
        if let Some(l) = links.get(para) {
            html.push_str(&format!("<a href=\"/page/{l}\">see page {l}</a>"));
        }
        html.push_str("</p>\n");
    }
    html.push_str("</body></html>\n");
    html
}

async fn serve(req: Request<Incoming>, pages: u32) -> Result<Response<Full<Bytes>>, Infallible> {
    let page = req
        .uri()
        .path()
        .strip_prefix("/page/")
        .and_then(|n| n.parse::<u32>().ok())
        .filter(|&n| n < pages);
    Ok(match page {
        Some(n) => Response::new(Full::new(Bytes::from(render(n, pages)))),
        None => {
            let mut r = Response::new(Full::new(Bytes::from_static(b"no such page\n")));
            *r.status_mut() = StatusCode::NOT_FOUND;
            r
        }
    })
}

/// Starts the site's server on a free port of 127.0.0.1; returns its address.
async fn start_server(pages: u32) -> std::io::Result<std::net::SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = service_fn(move |req| serve(req, pages));
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

// ---- the crawler ---------------------------------------------------------------

/// Fetches `path` with a plain HTTP/1.1 GET (one connection per page).
async fn fetch(addr: std::net::SocketAddr, path: &str) -> Result<String, String> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect to {addr}: {e}"))?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("send the request for {path}: {e}"))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .await
        .map_err(|e| format!("read {path}: {e}"))?;
    let text = String::from_utf8(raw).map_err(|_| format!("{path}: not UTF-8"))?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("{path}: no end of headers"))?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!(
            "{path}: {}",
            head.lines().next().unwrap_or("no status line")
        ));
    }
    Ok(body.to_string())
}

/// What a worker process finds in a page.
#[derive(Serialize, Deserialize)]
struct Parsed {
    links: Vec<String>,
    words: u64,
    /// The most frequent word, to show the parse looked at every word.
    top_word: String,
}

/// The CPU-bound part, run in a pool worker: tokenises the page, counts its words
/// and their frequencies, and extracts the links.
fn parse(html: String) -> Parsed {
    let mut links = Vec::new();
    let mut rest = html.as_str();
    while let Some(at) = rest.find("href=\"") {
        rest = &rest[at + 6..];
        if let Some(end) = rest.find('"') {
            links.push(rest[..end].to_string());
            rest = &rest[end..];
        }
    }
    let mut freq = std::collections::HashMap::<&str, u64>::new();
    let mut words = 0;
    let mut in_tag = false;
    let mut start = None;
    for (i, c) in html.char_indices() {
        match c {
            '<' => {
                in_tag = true;
                start = None;
            }
            '>' => in_tag = false,
            c if !in_tag && c.is_alphabetic() => {
                start.get_or_insert(i);
            }
            _ => {
                if let Some(s) = start.take() {
                    if !in_tag {
                        words += 1;
                        *freq.entry(&html[s..i]).or_default() += 1;
                    }
                }
            }
        }
    }
    let top_word = freq
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))
        .map(|(w, _)| w.to_string())
        .unwrap_or_default();
    Parsed {
        links,
        words,
        top_word,
    }
}

/// The pages a breadth-first walk from page 0 reaches within `depth` links.
fn expected(pages: u32, depth: u32) -> HashSet<u32> {
    let mut seen = HashSet::from([0]);
    let mut level = vec![0];
    for _ in 0..depth {
        let mut next = Vec::new();
        for n in level {
            for l in links_of(n, pages) {
                if seen.insert(l) {
                    next.push(l);
                }
            }
        }
        level = next;
    }
    seen
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args().map_err(|e| format!("crawler: {e}"))?;
    let addr = start_server(args.pages).await?;
    let pool = Arc::new(Pool::new(args.workers)?);
    let limit = Arc::new(Semaphore::new(args.concurrency));
    println!(
        "crawling http://{addr}/page/0 to depth {} ({} pages on the site), parsing on {} worker processes",
        args.depth, args.pages, args.workers
    );

    let start = Instant::now();
    let mut seen: HashSet<u32> = HashSet::from([0]);
    let mut frontier: VecDeque<u32> = VecDeque::from([0]);
    let (mut words, mut links, mut fetched) = (0u64, 0u64, 0u64);
    let mut tops = std::collections::BTreeMap::<String, u64>::new();
    for level in 0..=args.depth {
        let mut tasks = JoinSet::new();
        for n in frontier.drain(..) {
            let (pool, limit) = (Arc::clone(&pool), Arc::clone(&limit));
            tasks.spawn(async move {
                let _permit = limit.acquire_owned().await.map_err(|e| e.to_string())?;
                let path = format!("/page/{n}");
                let html = fetch(addr, &path).await?;
                // The parse runs in a worker process; awaiting it leaves the runtime
                // free to fetch other pages meanwhile.
                let parsed = pool
                    .apply_async(parse, html)
                    .await
                    .map_err(|e| format!("parsing {path}: {e}"))?;
                Ok::<Parsed, String>(parsed)
            });
        }
        while let Some(done) = tasks.join_next().await {
            let parsed = done??;
            fetched += 1;
            words += parsed.words;
            *tops.entry(parsed.top_word).or_default() += 1;
            for link in parsed.links {
                links += 1;
                let n: u32 = link
                    .strip_prefix("/page/")
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| format!("a link the site never serves: {link}"))?;
                if level < args.depth && seen.insert(n) {
                    frontier.push_back(n);
                }
            }
        }
    }
    let elapsed = start.elapsed();

    let want = expected(args.pages, args.depth);
    if seen != want || fetched as usize != want.len() {
        return Err(format!(
            "crawled {fetched} pages ({} distinct) but a breadth-first walk reaches {}",
            seen.len(),
            want.len()
        )
        .into());
    }
    let top = tops
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(w, _)| w.as_str())
        .unwrap_or("");
    println!(
        "crawled {fetched} pages ({words} words, {links} links; most pages' top word: {top:?}) in {:.2} s: {:.0} pages/s",
        elapsed.as_secs_f64(),
        fetched as f64 / elapsed.as_secs_f64()
    );
    println!(
        "every page a breadth-first walk of the site reaches within depth {} was crawled once",
        args.depth
    );
    Ok(())
}

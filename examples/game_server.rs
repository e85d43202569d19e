//! A multi-process game server: N worker processes accept TCP connections on one
//! port (`SO_REUSEPORT`: the kernel spreads new connections over them), each
//! client joins a room, moves, and gets the room's state back. Room occupancy and
//! each room's best score live in mproc shared memory, so every worker sees every
//! room. A worker that dies is restarted, and only its own clients reconnect.
//!
//! ```text
//! cargo run --release --example game_server -- --load 300 --seconds 5   # server + load generator, then exit
//! cargo run --release --example game_server -- --port 7000              # serve until Ctrl-C
//! ```
//!
//! With `--load N`, a load-generator process opens N connections to 127.0.0.1,
//! sends moves as fast as the replies come back, and reports messages per second
//! and round-trip percentiles; halfway through, one worker is killed with SIGKILL
//! (`--no-crash` to skip) to show that its clients reconnect and the others do not
//! notice. `--json` prints the report as one JSON line.
//!
//! The protocol is one line each way:
//!
//! ```text
//! JOIN <room>        ->  WELCOME <player> <room> <players in room>
//! MOVE <dx> <dy>     ->  STATE <x> <y> <score> <players in room> <room best>
//! ```

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mproc::process::{Process, cpu_count};
use mproc::shm::{Array, SharedAtomicU64};
use serde::{Deserialize, Serialize};
use socket2::{Domain, Socket, Type};

const ROOMS: usize = 16;
/// The most worker slots the shared tables have room for.
const MAX_WORKERS: usize = 64;
/// The room is a square of this side; positions wrap around.
const SIDE: i64 = 100;

/// What the workers share, in shared memory. Each is a handle: it travels to a
/// worker process as part of its argument.
#[derive(Clone, Serialize, Deserialize)]
struct World {
    /// Players per (worker slot, room): a slot writes only its own row, so when a
    /// worker dies the supervisor can clear exactly the players it had.
    players: Array<u32>,
    /// The best score seen in each room.
    best: Array<u64>,
    /// Messages answered, per worker slot.
    messages: Vec<SharedAtomicU64>,
    /// Open connections, per worker slot.
    connections: Vec<SharedAtomicU64>,
    /// Player ids, unique across workers.
    next_player: SharedAtomicU64,
}

impl World {
    fn new(workers: usize) -> Result<World, Box<dyn std::error::Error>> {
        Ok(World {
            players: Array::with_lock(MAX_WORKERS * ROOMS)?,
            best: Array::with_lock(ROOMS)?,
            messages: (0..workers)
                .map(|_| SharedAtomicU64::new(0))
                .collect::<Result<_, _>>()?,
            connections: (0..workers)
                .map(|_| SharedAtomicU64::new(0))
                .collect::<Result<_, _>>()?,
            next_player: SharedAtomicU64::new(1)?,
        })
    }

    fn room_players(&self, room: usize) -> u32 {
        (0..MAX_WORKERS)
            .map(|slot| self.players.get(slot * ROOMS + room))
            .sum()
    }

    /// Adds `delta` players to `room` in `slot`'s row.
    fn count_player(&self, slot: usize, room: usize, delta: i32) {
        // The lock also covers a holder that died mid-update: the row is this
        // slot's alone, and a dead worker's row is cleared before its restart.
        let guard = match self.players.lock() {
            Ok(g) => g,
            Err(died) => died.into_inner(),
        };
        let i = slot * ROOMS + room;
        guard.set(i, guard.get(i).saturating_add_signed(delta));
    }

    /// Raises `room`'s best score to `score` if it is higher.
    fn offer_best(&self, room: usize, score: u64) -> u64 {
        let current = self.best.get(room);
        if score <= current {
            return current;
        }
        let guard = match self.best.lock() {
            Ok(g) => g,
            Err(died) => died.into_inner(),
        };
        let best = guard.get(room).max(score);
        guard.set(room, best);
        best
    }

    /// Forgets the players of a dead worker.
    fn clear_slot(&self, slot: usize) {
        let guard = match self.players.lock() {
            Ok(g) => g,
            Err(died) => died.into_inner(),
        };
        for room in 0..ROOMS {
            guard.set(slot * ROOMS + room, 0);
        }
        self.connections[slot].store(0, Ordering::Relaxed);
    }
}

// ---------------------------------------------------------------------------
// A worker process.

/// A listening socket on `port` that shares the port with the other workers.
fn reuse_port_socket(port: u16) -> std::io::Result<Socket> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.set_reuse_port(true)?;
    socket.set_reuse_address(true)?;
    socket.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)).into())?;
    Ok(socket)
}

/// A worker: accepts connections on the shared port, a thread per client.
fn serve((slot, port, world): (usize, u16, World)) -> Result<(), String> {
    let socket = reuse_port_socket(port).map_err(|e| format!("worker {slot}: bind: {e}"))?;
    socket
        .listen(1024)
        .map_err(|e| format!("worker {slot}: listen: {e}"))?;
    let listener: TcpListener = socket.into();
    let world = Arc::new(world);
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(s) => s,
            // Out of descriptors or similar: this connection fails, the worker goes on.
            Err(_) => continue,
        };
        let world = Arc::clone(&world);
        std::thread::spawn(move || {
            world.connections[slot].fetch_add(1, Ordering::Relaxed);
            let _ = client_session(slot, stream, &world);
            world.connections[slot].fetch_sub(1, Ordering::Relaxed);
        });
    }
    Ok(())
}

/// One client, from `JOIN` to the end of its connection.
fn client_session(slot: usize, stream: TcpStream, world: &World) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut out = stream.try_clone()?;
    let mut lines = BufReader::new(stream);
    let mut line = String::new();
    let player = world.next_player.fetch_add(1, Ordering::Relaxed);
    let mut room = None;
    let (mut x, mut y, mut score) = (0i64, 0i64, 0u64);
    let result = loop {
        line.clear();
        match lines.read_line(&mut line) {
            Ok(0) => break Ok(()),
            Ok(_) => {}
            Err(e) => break Err(e),
        }
        let mut words = line.split_whitespace();
        let reply = match (words.next(), room) {
            (Some("JOIN"), None) => match words.next().and_then(|r| r.parse::<usize>().ok()) {
                Some(r) if r < ROOMS => {
                    room = Some(r);
                    world.count_player(slot, r, 1);
                    format!("WELCOME {player} {r} {}\n", world.room_players(r))
                }
                _ => format!("ERROR rooms are 0..{ROOMS}\n"),
            },
            (Some("MOVE"), Some(r)) => {
                let dx: i64 = words.next().and_then(|v| v.parse().ok()).unwrap_or(0);
                let dy: i64 = words.next().and_then(|v| v.parse().ok()).unwrap_or(0);
                let (dx, dy) = (dx.clamp(-1, 1), dy.clamp(-1, 1));
                x = (x + dx).rem_euclid(SIDE);
                y = (y + dy).rem_euclid(SIDE);
                // A gem lies wherever x + y is a multiple of 7.
                if (dx, dy) != (0, 0) && (x + y) % 7 == 0 {
                    score += 1;
                }
                let best = world.offer_best(r, score);
                world.messages[slot].fetch_add(1, Ordering::Relaxed);
                format!("STATE {x} {y} {score} {} {best}\n", world.room_players(r))
            }
            (Some("JOIN"), Some(_)) => "ERROR already in a room\n".to_string(),
            (Some("MOVE"), None) => "ERROR JOIN a room first\n".to_string(),
            _ => "ERROR unknown command\n".to_string(),
        };
        if let Err(e) = out.write_all(reply.as_bytes()) {
            break Err(e);
        }
    };
    if let Some(r) = room {
        world.count_player(slot, r, -1);
    }
    result
}

// ---------------------------------------------------------------------------
// The supervisor: keeps `workers` workers running.

struct Server {
    world: World,
    stop: Arc<AtomicBool>,
    restarts: Arc<AtomicU64>,
    supervisors: Vec<std::thread::JoinHandle<()>>,
    pids: Arc<Mutex<Vec<u32>>>,
    // Holds the port (bound, not listening) for the server's lifetime.
    _reservation: Socket,
    port: u16,
}

impl Server {
    fn start(workers: usize, port: u16) -> Result<Server, Box<dyn std::error::Error>> {
        let reservation = reuse_port_socket(port)?;
        let port = reservation
            .local_addr()?
            .as_socket()
            .ok_or("not an IP socket")?
            .port();
        let world = World::new(workers)?;
        let stop = Arc::new(AtomicBool::new(false));
        let restarts = Arc::new(AtomicU64::new(0));
        let pids = Arc::new(Mutex::new(vec![0; workers]));
        let mut supervisors = Vec::new();
        for slot in 0..workers {
            let (world, stop, restarts, pids) = (
                world.clone(),
                Arc::clone(&stop),
                Arc::clone(&restarts),
                Arc::clone(&pids),
            );
            let mut first = Some(
                Process::builder()
                    .name(format!("game-worker-{slot}"))
                    .start(serve, (slot, port, world.clone()))?,
            );
            supervisors.push(std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let started = match first.take() {
                        Some(p) => Ok(p),
                        None => Process::builder()
                            .name(format!("game-worker-{slot}"))
                            .start(serve, (slot, port, world.clone())),
                    };
                    let mut worker = match started {
                        Ok(p) => p,
                        Err(e) => {
                            eprintln!("worker {slot}: could not start: {e}; retrying");
                            std::thread::sleep(Duration::from_millis(200));
                            continue;
                        }
                    };
                    pids.lock().unwrap()[slot] = worker.pid();
                    // Watch the worker, looking up now and then for a shutdown.
                    let outcome = loop {
                        match worker.join_timeout(Duration::from_millis(100)) {
                            Ok(r) => break format!("{r:?}"),
                            Err(e) if e.is_timeout() => {
                                worker = e
                                    .into_inner()
                                    .expect("a timed-out join gives the handle back");
                                if stop.load(Ordering::Relaxed) {
                                    let _ = worker.kill();
                                    let _ = worker.join();
                                    return;
                                }
                            }
                            Err(e) => break e.to_string(),
                        }
                    };
                    world.clear_slot(slot);
                    if !stop.load(Ordering::Relaxed) {
                        restarts.fetch_add(1, Ordering::Relaxed);
                        println!("worker {slot} ended ({outcome}); restarting it");
                    }
                }
            }));
        }
        Ok(Server {
            world,
            stop,
            restarts,
            supervisors,
            pids,
            _reservation: reservation,
            port,
        })
    }

    fn messages(&self) -> u64 {
        self.world
            .messages
            .iter()
            .map(|m| m.load(Ordering::Relaxed))
            .sum()
    }

    fn live_line(&self, per_second: u64) -> String {
        let conns: Vec<String> = self
            .world
            .connections
            .iter()
            .map(|c| c.load(Ordering::Relaxed).to_string())
            .collect();
        let players: u32 = (0..ROOMS).map(|r| self.world.room_players(r)).sum();
        let best = (0..ROOMS)
            .map(|r| self.world.best.get(r))
            .max()
            .unwrap_or(0);
        format!(
            "connections per worker [{}]  players {players}  {per_second} msgs/s  best score {best}  restarts {}",
            conns.join(", "),
            self.restarts.load(Ordering::Relaxed)
        )
    }

    fn shutdown(self) {
        self.stop.store(true, Ordering::Relaxed);
        for s in self.supervisors {
            let _ = s.join();
        }
    }
}

// ---------------------------------------------------------------------------
// The load generator (a process of its own).

#[derive(Debug, Serialize, Deserialize)]
struct LoadReport {
    messages: u64,
    seconds: f64,
    reconnects: u64,
    errors: u64,
    /// Round trips in microseconds: `rtt_us[i]` is how many took `i` µs (the last
    /// bucket holds everything slower).
    rtt_us: Vec<u64>,
}

const RTT_BUCKETS: usize = 100_000;

impl LoadReport {
    fn percentile(&self, q: f64) -> usize {
        let n: u64 = self.rtt_us.iter().sum();
        let rank = ((q * n as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (us, &k) in self.rtt_us.iter().enumerate() {
            seen += k;
            if seen >= rank {
                return us;
            }
        }
        RTT_BUCKETS - 1
    }
}

/// One client of the load generator: joins a room, moves until `until`.
fn run_client(port: u16, room: usize, until: Instant, rtt: &mut [u64]) -> (u64, u64, u64) {
    let (mut messages, mut reconnects, mut errors) = (0, 0, 0);
    let mut first = true;
    while Instant::now() < until {
        if !first {
            reconnects += 1;
        }
        first = false;
        let Ok(stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
            errors += 1;
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let Ok(mut out) = stream.try_clone() else {
            continue;
        };
        let mut lines = BufReader::new(stream);
        let mut reply = String::new();
        if out.write_all(format!("JOIN {room}\n").as_bytes()).is_err()
            || lines.read_line(&mut reply).unwrap_or(0) == 0
        {
            continue;
        }
        let mut step = 0u64;
        while Instant::now() < until {
            step += 1;
            let (dx, dy) = [(1, 0), (0, 1), (-1, 0), (1, 1)][(step % 4) as usize];
            let t = Instant::now();
            reply.clear();
            if out
                .write_all(format!("MOVE {dx} {dy}\n").as_bytes())
                .is_err()
                || lines.read_line(&mut reply).unwrap_or(0) == 0
            {
                break; // the worker went away: reconnect
            }
            if !reply.starts_with("STATE ") {
                errors += 1;
                continue;
            }
            let us = (t.elapsed().as_micros() as usize).min(RTT_BUCKETS - 1);
            rtt[us] += 1;
            messages += 1;
        }
    }
    (messages, reconnects, errors)
}

/// The load generator: `clients` connections for `seconds`.
fn generate_load((port, clients, seconds): (u16, usize, f64)) -> LoadReport {
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(seconds);
    let threads: Vec<_> = (0..clients)
        .map(|i| {
            std::thread::spawn(move || {
                let mut rtt = vec![0u64; RTT_BUCKETS];
                let counts = run_client(port, i % ROOMS, until, &mut rtt);
                (counts, rtt)
            })
        })
        .collect();
    let mut report = LoadReport {
        messages: 0,
        seconds: 0.0,
        reconnects: 0,
        errors: 0,
        rtt_us: vec![0; RTT_BUCKETS],
    };
    for t in threads {
        let ((m, r, e), rtt) = t.join().expect("a load client panicked");
        report.messages += m;
        report.reconnects += r;
        report.errors += e;
        for (a, b) in report.rtt_us.iter_mut().zip(rtt) {
            *a += b;
        }
    }
    report.seconds = start.elapsed().as_secs_f64();
    // Only the non-empty prefix travels back.
    let last = report
        .rtt_us
        .iter()
        .rposition(|&k| k > 0)
        .map_or(0, |i| i + 1);
    report.rtt_us.truncate(last);
    report
}

// ---------------------------------------------------------------------------
// The program.

struct Args {
    workers: usize,
    port: u16,
    load: Option<usize>,
    seconds: f64,
    crash: bool,
    json: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        workers: cpu_count().max(2),
        port: 0,
        load: None,
        seconds: 5.0,
        crash: true,
        json: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        let bad = |name: &str, e: &dyn std::fmt::Display| format!("{name}: {e}");
        match a.as_str() {
            "--workers" => {
                args.workers = value("--workers")?
                    .parse()
                    .map_err(|e| bad("--workers", &e))?
            }
            "--port" => args.port = value("--port")?.parse().map_err(|e| bad("--port", &e))?,
            "--load" => args.load = Some(value("--load")?.parse().map_err(|e| bad("--load", &e))?),
            "--seconds" => {
                args.seconds = value("--seconds")?
                    .parse()
                    .map_err(|e| bad("--seconds", &e))?
            }
            "--no-crash" => args.crash = false,
            "--json" => args.json = true,
            "-h" | "--help" => {
                return Err("usage: game_server [--workers N] [--port P] [--load CLIENTS [--seconds S] [--no-crash] [--json]]".into());
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    if args.workers == 0 || args.workers > MAX_WORKERS {
        return Err(format!("--workers must be 1..={MAX_WORKERS}"));
    }
    Ok(args)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let server = Server::start(args.workers, args.port)?;
    println!(
        "game server: {} worker processes on 127.0.0.1:{} ({ROOMS} rooms)",
        args.workers, server.port
    );

    let Some(clients) = args.load else {
        // Serve until killed, printing live counts.
        let mut last = server.messages();
        loop {
            std::thread::sleep(Duration::from_secs(1));
            let now = server.messages();
            println!("{}", server.live_line(now - last));
            last = now;
        }
    };

    let mut load = Process::builder()
        .name("load-generator")
        .start(generate_load, (server.port, clients, args.seconds))?;
    let start = Instant::now();
    let mut crashed = !args.crash;
    let mut last = server.messages();
    let report = loop {
        match load.join_timeout(Duration::from_secs(1)) {
            Ok(report) => break report,
            Err(e) if e.is_timeout() => {
                load = e
                    .into_inner()
                    .expect("a timed-out join gives the handle back");
                let now = server.messages();
                println!("{}", server.live_line(now - last));
                last = now;
                if !crashed && start.elapsed().as_secs_f64() >= args.seconds / 2.0 {
                    let victim = server.pids.lock().unwrap()[0];
                    let pid =
                        rustix::process::Pid::from_raw(victim as i32).ok_or("no worker pid")?;
                    rustix::process::kill_process(pid, rustix::process::Signal::KILL)?;
                    println!("killed worker 0 (pid {victim}) with SIGKILL: its clients reconnect");
                    crashed = true;
                }
            }
            Err(e) => return Err(format!("the load generator failed: {e}").into()),
        }
    };
    let restarts = server.restarts.load(Ordering::Relaxed);
    server.shutdown();

    let rate = report.messages as f64 / report.seconds;
    if args.json {
        println!(
            "{{\"workers\":{},\"clients\":{clients},\"messages\":{},\"msgs_per_s\":{rate:.0},\"p50_us\":{},\"p90_us\":{},\"p99_us\":{},\"reconnects\":{},\"restarts\":{restarts}}}",
            args.workers,
            report.messages,
            report.percentile(0.5),
            report.percentile(0.9),
            report.percentile(0.99),
            report.reconnects
        );
    } else {
        println!(
            "\nload: {clients} clients, {} moves in {:.1} s = {rate:.0} msgs/s",
            report.messages, report.seconds
        );
        println!(
            "round trip: p50 {} us, p90 {} us, p99 {} us",
            report.percentile(0.5),
            report.percentile(0.9),
            report.percentile(0.99)
        );
        println!(
            "reconnects {} (clients of the killed worker), worker restarts {restarts}, errors {}",
            report.reconnects, report.errors
        );
    }
    if report.messages == 0 {
        return Err("no message got an answer".into());
    }
    Ok(())
}

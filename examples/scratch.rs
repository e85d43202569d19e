use mproc::process::{Process, StartMethod};
fn main() {
    for m in StartMethod::ALL {
        let t = std::time::Instant::now();
        let p = Process::builder().start_method(m).start(|x: u64| x * 2, 21).unwrap();
        println!("{m:?} -> {:?} in {:?}", p.join(), t.elapsed());
        let t = std::time::Instant::now();
        for _ in 0..50 { Process::builder().start_method(m).start(|x: u64| x * 2, 21).unwrap().join().unwrap(); }
        println!("{m:?} avg {:?}", t.elapsed() / 50);
        let p = Process::builder().start_method(m).start(|_: ()| -> u8 { panic!("boom") }, ()).unwrap();
        println!("{m:?} panic -> {}", p.join().unwrap_err());
        let t = std::thread::spawn(move || Process::builder().start_method(m).start(|x: u64| x + 1, 1).unwrap().join());
        println!("{m:?} from thread -> {:?}", t.join().unwrap());
    }
}

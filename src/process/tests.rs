//! Unit tests: among other things, `Spawn` from a unit-test binary.

use super::*;

fn negate(x: i64) -> i64 {
    -x
}

#[test]
fn spawn_works_from_a_unit_test() {
    for method in StartMethod::ALL {
        let p = Process::builder()
            .start_method(method)
            .start(negate, 5)
            .unwrap();
        assert_eq!(p.join().unwrap(), -5, "{method:?}");
    }
}

#[test]
fn exit_status_conversions() {
    assert_eq!(ExitStatus::from(RawExit::Code(2)), ExitStatus::Code(2));
    assert_eq!(ExitStatus::Code(2).code(), Some(2));
    assert_eq!(ExitStatus::Signal(15).signal(), Some(15));
    assert_eq!(
        ExitStatus::Signal(15).to_string(),
        "killed by signal 15 (SIGTERM)"
    );
    assert!(!ExitStatus::Code(1).success());
}

#[test]
fn status_wire_format_round_trips() {
    for raw in [RawExit::Code(0), RawExit::Code(-3), RawExit::Signal(9)] {
        assert_eq!(
            protocol::decode_status(protocol::encode_status(raw)),
            Some(raw)
        );
    }
    let mut bad = protocol::encode_status(RawExit::Code(0));
    bad[0] = 9;
    assert_eq!(protocol::decode_status(bad), None);
}

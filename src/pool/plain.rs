//! The fast path of a chunked `map` over plain numbers: a chunk of `u64` (or any
//! other primitive integer or float) travels as the little-endian bytes of its
//! items, with no per-item serde call on either side.
//!
//! Parent and worker run the same binary, so both pick this format from the item
//! type alone. Every other type travels as postcard, as before. Results use it too:
//! a chunk's results are the byte [`OK`] followed by the items' bytes; a chunk that
//! panicked is the postcard encoding of its `Err` (which starts with 1, never 0).

use std::any::Any;

/// First byte of a chunk's results in this format.
pub(crate) const OK: u8 = 0;

macro_rules! plain_types {
    ($($t:ty),* $(,)?) => {
        /// Appends the bytes of `items[range]` to `out`; `false` (and nothing
        /// written) when `T` is not a plain type.
        #[allow(clippy::ptr_arg, reason = "a `Vec<T>` is what downcasts to `Vec<u64>`")]
        pub(crate) fn encode<T: 'static>(
            items: &Vec<T>,
            range: std::ops::Range<usize>,
            out: &mut Vec<u8>,
        ) -> bool {
            let any = items as &dyn Any;
            $(
                if let Some(v) = any.downcast_ref::<Vec<$t>>() {
                    const N: usize = std::mem::size_of::<$t>();
                    let part = &v[range];
                    let at = out.len();
                    out.resize(at + part.len() * N, 0);
                    for (b, x) in out[at..].chunks_exact_mut(N).zip(part) {
                        b.copy_from_slice(&x.to_le_bytes());
                    }
                    return true;
                }
            )*
            false
        }

        /// Appends the items encoded in `bytes` to `out`. `None` when `T` is not a
        /// plain type; `Some(Err)` when `bytes` is not a whole number of items.
        #[allow(clippy::ptr_arg, reason = "a `Vec<T>` is what downcasts to `Vec<u64>`")]
        pub(crate) fn decode_into<T: 'static>(
            bytes: &[u8],
            out: &mut Vec<T>,
        ) -> Option<Result<(), String>> {
            let any = out as &mut dyn Any;
            $(
                if let Some(v) = any.downcast_mut::<Vec<$t>>() {
                    const N: usize = std::mem::size_of::<$t>();
                    if !bytes.chunks_exact(N).remainder().is_empty() {
                        return Some(Err(format!(
                            "{} bytes are not a whole number of {}-byte items",
                            bytes.len(),
                            N
                        )));
                    }
                    v.extend(
                        bytes
                            .chunks_exact(N)
                            .map(|c| <$t>::from_le_bytes(c.try_into().expect("N bytes"))),
                    );
                    return Some(Ok(()));
                }
            )*
            None
        }
    };
}

plain_types!(
    u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, f32, f64
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip() {
        let v: Vec<i64> = vec![-1, 0, i64::MAX, i64::MIN, 42];
        let mut bytes = Vec::new();
        assert!(encode(&v, 1..4, &mut bytes));
        assert_eq!(bytes.len(), 24);
        let mut back: Vec<i64> = vec![7];
        assert_eq!(decode_into(&bytes, &mut back), Some(Ok(())));
        assert_eq!(back, [7, 0, i64::MAX, i64::MIN]);

        let f = vec![1.5f64, f64::NAN];
        let mut bytes = Vec::new();
        assert!(encode(&f, 0..2, &mut bytes));
        let mut back: Vec<f64> = Vec::new();
        assert_eq!(decode_into(&bytes, &mut back), Some(Ok(())));
        assert_eq!(back[0], 1.5);
        assert!(back[1].is_nan());
    }

    #[test]
    fn other_types_are_not_plain() {
        let mut bytes = Vec::new();
        assert!(!encode(&vec!["a".to_string()], 0..1, &mut bytes));
        assert!(bytes.is_empty());
        let mut out: Vec<(u8, u8)> = Vec::new();
        assert!(decode_into(&[1, 2], &mut out).is_none());
    }

    #[test]
    fn a_torn_buffer_is_an_error() {
        let mut out: Vec<u32> = Vec::new();
        assert!(matches!(decode_into(&[1, 2, 3], &mut out), Some(Err(_))));
    }
}

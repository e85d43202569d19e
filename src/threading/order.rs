//! The three ordering disciplines the queues share their core with: first in first
//! out, last in first out, and smallest first (stable among equals).

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};

/// Where items wait and in which order `pop` hands them out.
pub(crate) trait Order: Default {
    /// The item type.
    type Item;
    /// Adds an item.
    fn push(&mut self, item: Self::Item);
    /// Takes the next item in this discipline's order.
    fn pop(&mut self) -> Option<Self::Item>;
    /// How many items wait.
    fn len(&self) -> usize;
}

/// First in, first out (Python's `queue.Queue`).
pub(crate) struct Fifo<T>(VecDeque<T>);

/// Last in, first out (Python's `queue.LifoQueue`).
pub(crate) struct Lifo<T>(Vec<T>);

/// Smallest first (Python's `queue.PriorityQueue` over `heapq`); items that compare
/// equal come out in the order they were put.
pub(crate) struct Priority<T> {
    heap: BinaryHeap<Entry<T>>,
    next_seq: u64,
}

impl<T> Default for Fifo<T> {
    fn default() -> Self {
        Fifo(VecDeque::new())
    }
}

impl<T> Default for Lifo<T> {
    fn default() -> Self {
        Lifo(Vec::new())
    }
}

impl<T: Ord> Default for Priority<T> {
    fn default() -> Self {
        Priority {
            heap: BinaryHeap::new(),
            next_seq: 0,
        }
    }
}

impl<T> Order for Fifo<T> {
    type Item = T;
    #[inline]
    fn push(&mut self, item: T) {
        self.0.push_back(item);
    }
    #[inline]
    fn pop(&mut self) -> Option<T> {
        self.0.pop_front()
    }
    #[inline]
    fn len(&self) -> usize {
        self.0.len()
    }
}

impl<T> Order for Lifo<T> {
    type Item = T;
    #[inline]
    fn push(&mut self, item: T) {
        self.0.push(item);
    }
    #[inline]
    fn pop(&mut self) -> Option<T> {
        self.0.pop()
    }
    #[inline]
    fn len(&self) -> usize {
        self.0.len()
    }
}

impl<T: Ord> Order for Priority<T> {
    type Item = T;
    #[inline]
    fn push(&mut self, item: T) {
        // A u64 sequence cannot wrap: at one put per nanosecond it lasts 584 years.
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Entry { item, seq });
    }
    #[inline]
    fn pop(&mut self) -> Option<T> {
        self.heap.pop().map(|e| e.item)
    }
    #[inline]
    fn len(&self) -> usize {
        self.heap.len()
    }
}

/// An item with its put sequence number. `BinaryHeap` is a max-heap, so the order is
/// reversed: the greatest entry is the smallest item, and among equal items the one
/// put first.
struct Entry<T> {
    item: T,
    seq: u64,
}

impl<T: Ord> Ord for Entry<T> {
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .item
            .cmp(&self.item)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

impl<T: Ord> PartialOrd for Entry<T> {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T: Ord> PartialEq for Entry<T> {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl<T: Ord> Eq for Entry<T> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain<O: Order>(mut o: O) -> Vec<O::Item> {
        std::iter::from_fn(|| o.pop()).collect()
    }

    #[test]
    fn each_order() {
        let mut f = Fifo::default();
        let mut l = Lifo::default();
        let mut p = Priority::default();
        for x in [3, 1, 2] {
            f.push(x);
            l.push(x);
            p.push(x);
        }
        assert_eq!(drain(f), [3, 1, 2]);
        assert_eq!(drain(l), [2, 1, 3]);
        assert_eq!(drain(p), [1, 2, 3]);
    }

    /// Orders by the key only, so equal keys with different tags are "equal" items.
    #[derive(Debug, PartialEq, Eq)]
    struct Keyed(u8, &'static str);
    impl Ord for Keyed {
        fn cmp(&self, o: &Self) -> Ordering {
            self.0.cmp(&o.0)
        }
    }
    impl PartialOrd for Keyed {
        fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
            Some(self.cmp(o))
        }
    }

    #[test]
    fn priority_ties_keep_put_order() {
        let mut p = Priority::default();
        for (k, t) in [(2, "a"), (1, "b"), (2, "c"), (1, "d"), (2, "e")] {
            p.push(Keyed(k, t));
        }
        let tags: Vec<_> = drain(p).into_iter().map(|k| k.1).collect();
        assert_eq!(tags, ["b", "d", "a", "c", "e"]);
    }
    /// Orders by the key only; the second field is the put index.
    #[derive(Debug, PartialEq, Eq)]
    struct Tagged(u8, u32);
    impl Ord for Tagged {
        fn cmp(&self, o: &Self) -> Ordering {
            self.0.cmp(&o.0)
        }
    }
    impl PartialOrd for Tagged {
        fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
            Some(self.cmp(o))
        }
    }

    /// Pushes and pops interleaved at random against a sorted model: the heap
    /// always hands out the smallest key, equal keys in put order, at every size.
    #[test]
    fn priority_matches_a_sorted_model() {
        let mut p = Priority::default();
        let mut model = std::collections::BTreeSet::new();
        let mut x = 0x853c_49e6_748f_ea9bu64;
        for i in 0..50_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // More pushes than pops at first, then more pops: sizes 0 to thousands.
            let push_odds = if i < 25_000 { 3 } else { 1 };
            if x % 4 < push_odds {
                let key = (x >> 8) as u8 % 32;
                p.push(Tagged(key, i));
                model.insert((key, i));
            } else {
                let want = model.pop_first();
                assert_eq!(p.pop().map(|t| (t.0, t.1)), want, "step {i}");
            }
        }
        while let Some(want) = model.pop_first() {
            assert_eq!(p.pop().map(|t| (t.0, t.1)), Some(want));
        }
        assert!(p.pop().is_none());
    }
}

//! [`Prioritized`]: an item ordered by its priority alone, for a
//! [`PriorityQueue`](super::PriorityQueue).

use std::cmp::Ordering;

/// An item with a priority, ordered by the priority alone: the item itself is
/// never compared (it need not be `Ord`).
///
/// Python's documentation suggests the same for `queue.PriorityQueue`
/// (`PrioritizedItem` with `field(compare=False)`). In a
/// [`PriorityQueue`](super::PriorityQueue), items of equal priority come out in the
/// order they were put.
///
/// # Examples
///
/// ```
/// use mproc::threading::{Prioritized, PriorityQueue};
///
/// let q = PriorityQueue::new();
/// q.put(Prioritized::new(2, "write report")).unwrap();
/// q.put(Prioritized::new(1, "fix outage")).unwrap();
/// q.put(Prioritized::new(2, "answer mail")).unwrap();
/// let order: Vec<_> = std::iter::from_fn(|| q.try_get().ok()).map(|p| p.item).collect();
/// assert_eq!(order, ["fix outage", "write report", "answer mail"]);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Prioritized<P, T> {
    /// The priority: smaller comes out of a `PriorityQueue` first.
    pub priority: P,
    /// The item, never compared.
    pub item: T,
}

impl<P, T> Prioritized<P, T> {
    /// Pairs `item` with `priority`.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::threading::Prioritized;
    ///
    /// let p = Prioritized::new(3, vec![1.5f64]); // f64 is not Ord: fine, never compared
    /// assert_eq!(p.priority, 3);
    /// ```
    pub fn new(priority: P, item: T) -> Self {
        Prioritized { priority, item }
    }

    /// The item, without its priority.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::threading::Prioritized;
    ///
    /// assert_eq!(Prioritized::new(1, 'x').into_inner(), 'x');
    /// ```
    pub fn into_inner(self) -> T {
        self.item
    }
}

impl<P: Ord, T> Ord for Prioritized<P, T> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.priority.cmp(&other.priority)
    }
}

impl<P: Ord, T> PartialOrd for Prioritized<P, T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<P: Ord, T> PartialEq for Prioritized<P, T> {
    fn eq(&self, other: &Self) -> bool {
        self.priority == other.priority
    }
}

impl<P: Ord, T> Eq for Prioritized<P, T> {}

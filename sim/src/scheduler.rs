//! Discrete-event queue over virtual time.

use crate::clock::SimTime;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Why an event could not be scheduled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The requested time is before the scheduler's current time.
    #[error("cannot schedule at {at}: current time is {now}")]
    InPast {
        /// Requested delivery time.
        at: SimTime,
        /// Current virtual time.
        now: SimTime,
    },
    /// The queue already holds its maximum number of pending events.
    #[error("scheduler full: {capacity} events pending")]
    Full {
        /// Configured maximum number of pending events.
        capacity: usize,
    },
    /// `now + delay` does not fit in virtual time.
    #[error("time overflow: {now} + {delay}ms")]
    TimeOverflow {
        /// Current virtual time.
        now: SimTime,
        /// Requested delay in milliseconds.
        delay: u64,
    },
}

/// A pending event; ordered so the max-heap pops the earliest (time, seq).
struct Entry<E> {
    time: SimTime,
    seq: u64,
    event: E,
}

impl<E> Entry<E> {
    fn key(&self) -> (SimTime, u64) {
        (self.time, self.seq)
    }
}

impl<E> PartialEq for Entry<E> {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl<E> Eq for Entry<E> {}

impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<E> Ord for Entry<E> {
    fn cmp(&self, other: &Self) -> Ordering {
        other.key().cmp(&self.key())
    }
}

/// A bounded discrete-event queue: events pop in time order, and events due at
/// the same time pop in the order they were scheduled.
pub struct Scheduler<E> {
    heap: BinaryHeap<Entry<E>>,
    now: SimTime,
    next_seq: u64,
    capacity: usize,
}

impl<E> Scheduler<E> {
    /// An empty queue at time zero holding at most `capacity` pending events.
    pub fn new(capacity: usize) -> Self {
        Self {
            heap: BinaryHeap::new(),
            now: SimTime::ZERO,
            next_seq: 0,
            capacity,
        }
    }

    /// Current virtual time: the time of the last popped event.
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// Maximum number of pending events.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Queues `event` at `at`, which may equal but not precede [`Self::now`].
    pub fn schedule_at(&mut self, at: SimTime, event: E) -> Result<(), ScheduleError> {
        if at < self.now {
            return Err(ScheduleError::InPast { at, now: self.now });
        }
        if self.heap.len() >= self.capacity {
            return Err(ScheduleError::Full {
                capacity: self.capacity,
            });
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Entry {
            time: at,
            seq,
            event,
        });
        Ok(())
    }

    /// Queues `event` `delay` milliseconds after [`Self::now`].
    pub fn schedule_in(&mut self, delay: u64, event: E) -> Result<(), ScheduleError> {
        let at = self
            .now
            .checked_add(delay)
            .ok_or(ScheduleError::TimeOverflow {
                now: self.now,
                delay,
            })?;
        self.schedule_at(at, event)
    }

    /// Removes the earliest event and advances [`Self::now`] to its time.
    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        let Entry { time, event, .. } = self.heap.pop()?;
        self.now = time;
        Some((time, event))
    }

    /// Time of the earliest pending event.
    pub fn peek_time(&self) -> Option<SimTime> {
        self.heap.peek().map(|e| e.time)
    }

    /// Number of pending events.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether no event is pending.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_time_order_and_advances_now() {
        let mut s = Scheduler::new(16);
        for t in [30, 10, 20] {
            s.schedule_at(SimTime(t), t).unwrap();
        }
        assert_eq!(s.peek_time(), Some(SimTime(10)));
        assert_eq!(s.len(), 3);
        assert_eq!(s.pop(), Some((SimTime(10), 10)));
        assert_eq!(s.now(), SimTime(10));
        s.schedule_in(5, 15).unwrap();
        let rest: Vec<_> = std::iter::from_fn(|| s.pop()).collect();
        assert_eq!(
            rest,
            [(SimTime(15), 15), (SimTime(20), 20), (SimTime(30), 30)]
        );
        assert!(s.is_empty());
        assert_eq!(s.pop(), None);
        assert_eq!(
            s.now(),
            SimTime(30),
            "popping an empty queue keeps the time"
        );
    }

    #[test]
    fn equal_time_events_pop_in_insertion_order() {
        let mut s = Scheduler::new(1000);
        for i in 0..500u32 {
            // Interleave two times so the heap really has to reorder.
            s.schedule_at(SimTime(u64::from(i % 2)), i).unwrap();
        }
        let order: Vec<u32> = std::iter::from_fn(|| s.pop()).map(|(_, e)| e).collect();
        let expected: Vec<u32> = (0..500).step_by(2).chain((1..500).step_by(2)).collect();
        assert_eq!(order, expected);
    }

    #[test]
    fn past_scheduling_is_rejected_and_now_is_allowed() {
        let mut s = Scheduler::new(4);
        s.schedule_at(SimTime(100), 'a').unwrap();
        s.pop();
        assert_eq!(
            s.schedule_at(SimTime(99), 'b'),
            Err(ScheduleError::InPast {
                at: SimTime(99),
                now: SimTime(100)
            })
        );
        assert!(s.is_empty());
        s.schedule_at(SimTime(100), 'c').unwrap();
        s.schedule_in(0, 'd').unwrap();
        assert_eq!(s.pop(), Some((SimTime(100), 'c')));
        assert_eq!(s.pop(), Some((SimTime(100), 'd')));
    }

    #[test]
    fn capacity_bound_is_enforced() {
        let mut s = Scheduler::new(3);
        for i in 0..3 {
            s.schedule_in(i, i).unwrap();
        }
        assert_eq!(
            s.schedule_in(9, 9),
            Err(ScheduleError::Full { capacity: 3 })
        );
        assert_eq!(s.len(), 3);
        s.pop();
        s.schedule_in(9, 9).unwrap();
        assert_eq!(
            s.schedule_in(9, 10),
            Err(ScheduleError::Full { capacity: 3 })
        );
        let mut zero = Scheduler::new(0);
        assert_eq!(
            zero.schedule_in(0, ()),
            Err(ScheduleError::Full { capacity: 0 })
        );
    }

    #[test]
    fn delay_overflow_is_rejected() {
        let mut s = Scheduler::new(2);
        s.schedule_at(SimTime(u64::MAX), 0).unwrap();
        s.pop();
        assert_eq!(
            s.schedule_in(1, 1),
            Err(ScheduleError::TimeOverflow {
                now: SimTime(u64::MAX),
                delay: 1
            })
        );
        s.schedule_in(0, 2).unwrap();
    }
}

//! Weighings waiting for the gateway, oldest first, until it confirms each one.
//!
//! Every weighing goes through the queue, connected or not: the GATT layer indicates
//! `oldest()`, and calls `remove_oldest()` only once the indication is confirmed, so a link that
//! drops before the confirmation loses nothing (the weighing is indicated again on the next
//! connection; the gateway deduplicates on time stamp, user and value).
//!
//! The queue's head lives in RAM (`RAM_QUEUE_LEN` weighings). Behind it, a `WeighingArchive`
//! keeps them across power cuts: on flash, the record log (`crate::record_log::RecordLog`, given a
//! region of its own); `RamOnly` is the archive of a device without one, which drops the oldest
//! weighing once RAM is full.

use core::convert::Infallible;

use embedded_storage::nor_flash::NorFlash;
use heapless::Deque;

use super::measurement::Weighing;
use crate::record_log::{self, RecordLog};

/// Weighings held in RAM.
pub const RAM_QUEUE_LEN: usize = 16;

/// Durable storage for the weighings the gateway has not confirmed yet.
pub trait WeighingArchive {
    type Error;
    /// True when the archive keeps every weighing appended (flash): the queue then never drops
    /// one, it only fetches those that did not fit in RAM later.
    const KEEPS_ALL: bool;

    /// Stores a new weighing, durably once this returns.
    fn append(&mut self, weighing: &Weighing) -> Result<(), Self::Error>;
    /// Forgets the oldest undelivered weighing: the gateway confirmed it.
    fn remove_oldest(&mut self) -> Result<(), Self::Error>;
    /// The undelivered weighing at `index`, 0 being the oldest.
    fn get(&mut self, index: usize) -> Result<Option<Weighing>, Self::Error>;
    /// How many weighings are undelivered.
    fn undelivered_count(&mut self) -> Result<usize, Self::Error>;
}

/// No durable storage: the RAM queue is all there is.
#[derive(Debug, Clone, Copy, Default)]
pub struct RamOnly;

impl WeighingArchive for RamOnly {
    type Error = Infallible;
    const KEEPS_ALL: bool = false;

    fn append(&mut self, _weighing: &Weighing) -> Result<(), Infallible> {
        Ok(())
    }

    fn remove_oldest(&mut self) -> Result<(), Infallible> {
        Ok(())
    }

    fn get(&mut self, _index: usize) -> Result<Option<Weighing>, Infallible> {
        Ok(None)
    }

    fn undelivered_count(&mut self) -> Result<usize, Infallible> {
        Ok(0)
    }
}

/// Read buffer for one weighing record: postcard needs under 16 bytes.
const RECORD_BUF_LEN: usize = 32;

/// The record log as the archive: a region of flash holding only this scale's weighings, one
/// record each, deleted once delivered.
impl<F: NorFlash> WeighingArchive for RecordLog<F> {
    type Error = record_log::Error<F::Error>;
    const KEEPS_ALL: bool = true;

    fn append(&mut self, weighing: &Weighing) -> Result<(), Self::Error> {
        RecordLog::append(self, weighing).map(|_| ())
    }

    fn remove_oldest(&mut self) -> Result<(), Self::Error> {
        if let Some(oldest) = self.first() {
            self.delete(oldest)?;
        }
        Ok(())
    }

    fn get(&mut self, index: usize) -> Result<Option<Weighing>, Self::Error> {
        let mut buf = [0u8; RECORD_BUF_LEN];
        let mut records = self.iter::<Weighing>(&mut buf);
        for _ in 0..index {
            match records.next() {
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(error),
                None => return Ok(None),
            }
        }
        records
            .next()
            .transpose()
            .map(|found| found.map(|(_, weighing)| weighing))
    }

    fn undelivered_count(&mut self) -> Result<usize, Self::Error> {
        Ok(self.count() as usize)
    }
}

/// The RAM head of the queue over its archive.
#[derive(Debug)]
pub struct OfflineQueue<A> {
    ram: Deque<Weighing, RAM_QUEUE_LEN>,
    archive: A,
    /// Undelivered weighings that are in the archive but not (yet) in RAM: the newest ones.
    archived_only: usize,
    /// Weighings lost because RAM was full and the archive does not keep them.
    dropped: u32,
}

impl<A: WeighingArchive> OfflineQueue<A> {
    /// The queue of what `archive` still holds (after a reboot: what was not delivered).
    pub fn new(mut archive: A) -> Result<Self, A::Error> {
        let undelivered = archive.undelivered_count()?;
        let mut ram = Deque::new();
        for index in 0..undelivered.min(RAM_QUEUE_LEN) {
            if let Some(weighing) = archive.get(index)? {
                // Cannot fail: at most RAM_QUEUE_LEN are pushed.
                let _ = ram.push_back(weighing);
            }
        }
        Ok(Self {
            archived_only: undelivered.saturating_sub(ram.len()),
            ram,
            archive,
            dropped: 0,
        })
    }

    /// Queues a new weighing behind the others.
    pub fn push(&mut self, weighing: Weighing) -> Result<(), A::Error> {
        self.archive.append(&weighing)?;
        if self.archived_only > 0 || self.ram.is_full() {
            if A::KEEPS_ALL {
                self.archived_only += 1;
                return Ok(());
            }
            let _ = self.ram.pop_front();
            self.dropped = self.dropped.saturating_add(1);
        }
        // Room was made above when needed.
        let _ = self.ram.push_back(weighing);
        Ok(())
    }

    /// The weighing to send next.
    pub fn oldest(&self) -> Option<&Weighing> {
        self.ram.front()
    }

    /// The gateway confirmed `oldest()`: forget it, and bring the next archived one into RAM.
    /// Returns false when the queue was empty.
    pub fn remove_oldest(&mut self) -> Result<bool, A::Error> {
        if self.ram.is_empty() {
            return Ok(false);
        }
        self.archive.remove_oldest()?;
        let _ = self.ram.pop_front();
        if self.archived_only > 0 {
            if let Some(next) = self.archive.get(self.ram.len())? {
                let _ = self.ram.push_back(next);
            }
            self.archived_only -= 1;
        }
        Ok(true)
    }

    /// Weighings not yet confirmed.
    pub fn len(&self) -> usize {
        self.ram.len() + self.archived_only
    }

    /// True when everything has been delivered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Weighings lost to a full RAM queue (only without a durable archive).
    pub fn dropped(&self) -> u32 {
        self.dropped
    }

    /// The archive, for its owner to inspect.
    pub fn archive(&self) -> &A {
        &self.archive
    }

    /// Gives the archive back.
    pub fn release(self) -> A {
        self.archive
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scale::measurement::WeightUnit;

    fn weighing(n: u16) -> Weighing {
        Weighing {
            raw_weight: n,
            unit: WeightUnit::Kilogram,
            user_id: 0,
            time_stamp: None,
        }
    }

    type Flash = relais_board_sim::RamFlash<4>;

    fn log(flash: &mut Flash) -> RecordLog<&mut Flash> {
        RecordLog::mount(flash, 0..4 * 4096, record_log::WhenFull::Refuse).unwrap()
    }

    #[test]
    fn delivers_in_order_and_only_forgets_what_was_confirmed() {
        let mut queue = OfflineQueue::new(RamOnly).unwrap();
        for n in 1..=3 {
            queue.push(weighing(n)).unwrap();
        }
        assert_eq!(queue.oldest(), Some(&weighing(1)));
        // The link dropped before the confirmation: the same weighing is next again.
        assert_eq!(queue.oldest(), Some(&weighing(1)));
        assert!(queue.remove_oldest().unwrap());
        assert_eq!(queue.oldest(), Some(&weighing(2)));
        assert_eq!(queue.len(), 2);
    }

    #[test]
    fn without_an_archive_a_full_queue_drops_the_oldest() {
        let mut queue = OfflineQueue::new(RamOnly).unwrap();
        for n in 0..RAM_QUEUE_LEN as u16 + 2 {
            queue.push(weighing(n)).unwrap();
        }
        assert_eq!(queue.len(), RAM_QUEUE_LEN);
        assert_eq!(queue.dropped(), 2);
        assert_eq!(queue.oldest(), Some(&weighing(2)));
    }

    #[test]
    fn with_the_record_log_nothing_is_dropped_and_the_overflow_follows_in_order() {
        let mut flash = Flash::new();
        let mut queue = OfflineQueue::new(log(&mut flash)).unwrap();
        let total = RAM_QUEUE_LEN as u16 + 5;
        for n in 0..total {
            queue.push(weighing(n)).unwrap();
        }
        assert_eq!(queue.len(), usize::from(total));
        for n in 0..total {
            assert_eq!(queue.oldest(), Some(&weighing(n)));
            assert!(queue.remove_oldest().unwrap());
        }
        assert!(queue.is_empty());
        assert!(!queue.remove_oldest().unwrap());
        assert_eq!(queue.dropped(), 0);
    }

    #[test]
    fn a_reboot_reloads_the_undelivered_from_the_record_log() {
        let mut flash = Flash::new();
        {
            let mut queue = OfflineQueue::new(log(&mut flash)).unwrap();
            for n in 0..20 {
                queue.push(weighing(n)).unwrap();
            }
            queue.remove_oldest().unwrap();
        }
        let mut rebooted = OfflineQueue::new(log(&mut flash)).unwrap();
        assert_eq!(rebooted.len(), 19);
        for n in 1..20 {
            assert_eq!(rebooted.oldest(), Some(&weighing(n)));
            rebooted.remove_oldest().unwrap();
        }
    }
}

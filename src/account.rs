//! Account state: a mature balance, a nonce and immature coinbase credits (consensus-critical).
//!
//! This is the value the state tree commits to for every address (see [`crate::state_tree`]).
//! Its canonical encoding is `balance: varint, nonce: varint, immature: varint count (at most
//! [`MAX_IMMATURE_CREDITS`]) then (height: varint, amount: varint) per credit`.
//!
//! Invariants, kept by [`Account::add_immature`] and [`Account::mature`]: credits are sorted by
//! strictly increasing height and every credit amount is non-zero. An account equal to
//! [`Account::default`] (nothing at all) is the same as no account: the state tree stores no
//! leaf for it.

use serde::{Deserialize, Serialize};

use crate::Height;
use crate::amount::{Amount, AmountOverflow};
use crate::encoding::{BoundedVec, Canonical};
use crate::limits::MAX_IMMATURE_CREDITS;

/// A coinbase credit that is not spendable yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ImmatureCredit {
    /// Height of the block whose coinbase paid it.
    pub height: Height,
    /// The amount credited (all outputs of that coinbase to this address, summed).
    pub amount: Amount,
}

/// The state of one account.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Account {
    /// Spendable balance.
    pub balance: Amount,
    /// Number of transfers this account has sent.
    pub nonce: u64,
    /// Coinbase credits not yet mature, by strictly increasing height.
    pub immature: BoundedVec<ImmatureCredit, MAX_IMMATURE_CREDITS>,
}

impl Canonical for Account {
    const NAME: &'static str = "account";
    /// Two varint `u64`s, a two-byte count and up to [`MAX_IMMATURE_CREDITS`] pairs of varints.
    const MAX_ENCODED_LEN: usize = 10 + 10 + 2 + MAX_IMMATURE_CREDITS * (10 + 10);
}

/// Why an account operation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// The account already holds the most immature credits allowed.
    #[error("account already holds the maximum of {max} immature credits")]
    TooManyCredits {
        /// The limit, [`MAX_IMMATURE_CREDITS`].
        max: usize,
    },
    /// A credit was added below the height of the latest one.
    #[error("immature credit at height {height} is below the latest credit at height {latest}")]
    CreditOutOfOrder {
        /// Height of the refused credit.
        height: Height,
        /// Height of the account's latest credit.
        latest: Height,
    },
    /// A balance or credit sum overflowed.
    #[error(transparent)]
    Overflow(#[from] AmountOverflow),
}

impl Account {
    /// An account with a mature balance and a nonce and no immature credits.
    pub fn new(balance: Amount, nonce: u64) -> Self {
        Self {
            balance,
            nonce,
            immature: BoundedVec::new(),
        }
    }

    /// True when the account holds nothing: no balance, nonce zero, no credits. Such an account
    /// is the same as an absent one.
    pub fn is_empty(&self) -> bool {
        self.balance == Amount::ZERO && self.nonce == 0 && self.immature.is_empty()
    }

    /// The sum of the immature credits.
    pub fn immature_total(&self) -> Result<Amount, AmountOverflow> {
        Amount::try_sum(self.immature.iter().map(|c| c.amount))
    }

    /// Records a coinbase credit at `height`, merging it with a credit at the same height.
    ///
    /// Call [`mature`](Self::mature) first so that matured credits leave the list; a zero amount
    /// changes nothing.
    pub fn add_immature(&mut self, height: Height, amount: Amount) -> Result<(), AccountError> {
        if amount == Amount::ZERO {
            return Ok(());
        }
        let full = AccountError::TooManyCredits {
            max: MAX_IMMATURE_CREDITS,
        };
        match self.immature.last_mut() {
            Some(last) if last.height == height => {
                last.amount = last.amount.try_add(amount)?;
                Ok(())
            }
            Some(last) if last.height > height => Err(AccountError::CreditOutOfOrder {
                height,
                latest: last.height,
            }),
            _ => self
                .immature
                .try_push(ImmatureCredit { height, amount })
                .map_err(|_| full),
        }
    }

    /// Moves every credit that is mature at `tip_height` into the balance and returns the amount
    /// moved. A credit is mature once `tip_height - credit_height >= maturity`.
    ///
    /// On overflow the account is left unchanged.
    pub fn mature(&mut self, tip_height: Height, maturity: u64) -> Result<Amount, AccountError> {
        let ripe = self
            .immature
            .iter()
            .take_while(|c| {
                tip_height.saturating_sub(c.height) >= maturity && c.height <= tip_height
            })
            .count();
        if ripe == 0 {
            return Ok(Amount::ZERO);
        }
        let moved = Amount::try_sum(self.immature[..ripe].iter().map(|c| c.amount))?;
        self.balance = self.balance.try_add(moved)?;
        self.immature.remove_front(ripe);
        Ok(moved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::{decode, encode};
    use proptest::prelude::*;

    #[test]
    fn empty_account_is_default() {
        assert!(Account::default().is_empty());
        assert!(!Account::new(Amount(1), 0).is_empty());
        assert!(!Account::new(Amount::ZERO, 1).is_empty());
        let mut a = Account::default();
        a.add_immature(5, Amount(1)).unwrap();
        assert!(!a.is_empty());
    }

    #[test]
    fn credits_merge_sort_and_mature() {
        let mut a = Account::new(Amount(10), 3);
        a.add_immature(5, Amount(1)).unwrap();
        a.add_immature(5, Amount(2)).unwrap();
        a.add_immature(7, Amount(4)).unwrap();
        a.add_immature(7, Amount::ZERO).unwrap();
        assert_eq!(a.immature.len(), 2);
        assert_eq!(a.immature_total(), Ok(Amount(7)));
        assert_eq!(
            a.add_immature(6, Amount(1)),
            Err(AccountError::CreditOutOfOrder {
                height: 6,
                latest: 7
            })
        );
        assert_eq!(
            a.immature.len(),
            2,
            "a refused credit leaves the list alone"
        );
        // Maturity 100: the credit of height 5 matures at tip 105.
        assert_eq!(a.mature(104, 100), Ok(Amount::ZERO));
        assert_eq!(a.mature(105, 100), Ok(Amount(3)));
        assert_eq!(a.balance, Amount(13));
        assert_eq!(a.immature.len(), 1);
        assert_eq!(a.mature(1_000, 100), Ok(Amount(4)));
        assert!(a.immature.is_empty());
        assert_eq!(a.balance, Amount(17));
    }

    #[test]
    fn credit_list_is_bounded() {
        let mut a = Account::default();
        for h in 0..MAX_IMMATURE_CREDITS as u64 {
            a.add_immature(h, Amount(1)).unwrap();
        }
        assert_eq!(
            a.add_immature(u64::MAX, Amount(1)),
            Err(AccountError::TooManyCredits {
                max: MAX_IMMATURE_CREDITS
            })
        );
        // Merging into the latest credit still works when full.
        a.add_immature(MAX_IMMATURE_CREDITS as u64 - 1, Amount(1))
            .unwrap();
        let bytes = encode(&a);
        assert!(bytes.len() <= Account::MAX_ENCODED_LEN);
        assert_eq!(decode::<Account>(&bytes), Ok(a));
    }

    #[test]
    fn overflow_is_an_error_and_changes_nothing() {
        let mut a = Account::new(Amount::MAX, 0);
        a.add_immature(1, Amount(1)).unwrap();
        let before = a.clone();
        assert_eq!(a.mature(10, 0), Err(AccountError::Overflow(AmountOverflow)));
        assert_eq!(a, before);
        let mut b = Account::default();
        b.add_immature(1, Amount::MAX).unwrap();
        assert!(b.add_immature(1, Amount(1)).is_err());
    }

    #[test]
    fn encoding_layout() {
        let mut a = Account::new(Amount(300), 2);
        a.add_immature(1, Amount(5)).unwrap();
        assert_eq!(encode(&a), vec![0xac, 0x02, 2, 1, 1, 5]);
        assert_eq!(encode(&Account::default()), vec![0, 0, 0]);
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(a) = decode::<Account>(&bytes) {
                prop_assert_eq!(encode(&a), bytes);
            }
        }
    }
}

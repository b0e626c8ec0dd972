//! The state transition of a block: transfers, fees, the coinbase and coinbase maturity
//! (consensus-critical).
//!
//! Every account a block touches is first matured at the block's height: a coinbase credit of
//! height `c` becomes spendable in the block at height `h` when `h - c >= coinbase_maturity`.
//! Then the transfers apply in block order (nonce, mature balance, debit of amount plus fee,
//! credit of the amount), and last the coinbase outputs are credited as immature credits of
//! height `h`. Accounts the block does not touch keep their credits as they are; queries mature
//! them on the fly, so laziness never shows.

use std::collections::HashMap;

use super::error::InvalidBlock;
use crate::account::{Account, AccountError};
use crate::block::Block;
use crate::crypto::Address;
use crate::{Amount, Height};

/// What a valid block does to the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockEffects {
    /// The new state of every account the block touched (an empty account is removed).
    pub changes: Vec<(Address, Account)>,
    /// The fees of all transfers.
    pub fees: Amount,
    /// The sum of the coinbase outputs.
    pub coinbase_total: Amount,
}

/// Why a transition could not be computed: the block is invalid, or reading an account failed.
#[derive(Debug)]
pub enum TransitionError<E> {
    /// The block breaks a rule.
    Invalid(InvalidBlock),
    /// The account source failed.
    Source(E),
}

impl<E> From<InvalidBlock> for TransitionError<E> {
    fn from(e: InvalidBlock) -> Self {
        Self::Invalid(e)
    }
}

/// Accounts touched so far, loaded once and matured at the block height.
struct Touched<F> {
    accounts: HashMap<Address, Account>,
    load: F,
    height: Height,
    maturity: u64,
}

impl<F, E> Touched<F>
where
    F: FnMut(&Address) -> Result<Option<Account>, E>,
{
    fn get(&mut self, address: &Address) -> Result<&mut Account, TransitionError<E>> {
        if !self.accounts.contains_key(address) {
            let mut account = (self.load)(address)
                .map_err(TransitionError::Source)?
                .unwrap_or_default();
            // Overflow while maturing means the stored state is absurd; the account keeps its
            // credits and the transfers below fail on the balance they can see.
            let _ = account.mature(self.height, self.maturity);
            self.accounts.insert(*address, account);
        }
        // Inserted just above when missing.
        Ok(self.accounts.entry(*address).or_default())
    }
}

/// Computes the effects of `block` at `height` on the state `load` reads, checking nonces,
/// balances, maturity and the coinbase amount against `reward` (the emission at this height).
///
/// `load` returns the stored account of an address (`None` for an empty one). The chain id,
/// signatures and the other stateless rules are checked before this.
pub fn apply_block<F, E>(
    block: &Block,
    height: Height,
    maturity: u64,
    reward: Amount,
    load: F,
) -> Result<BlockEffects, TransitionError<E>>
where
    F: FnMut(&Address) -> Result<Option<Account>, E>,
{
    let mut touched = Touched {
        accounts: HashMap::with_capacity(block.transfers.len() * 2 + block.coinbase.outputs.len()),
        load,
        height,
        maturity,
    };
    let mut fees = Amount::ZERO;
    for (index, tx) in block.transfers.iter().enumerate() {
        let needed = tx
            .total_debit()
            .map_err(|error| InvalidBlock::Transfer { index, error })?;
        let sender = touched.get(&tx.from)?;
        if tx.nonce != sender.nonce {
            return Err(InvalidBlock::Nonce {
                index,
                expected: sender.nonce,
                found: tx.nonce,
            }
            .into());
        }
        let Some(rest) = sender.balance.checked_sub(needed) else {
            return Err(InvalidBlock::InsufficientBalance {
                index,
                needed,
                available: sender.balance,
                immature: sender.immature_total().unwrap_or(Amount::MAX),
            }
            .into());
        };
        let overflow = InvalidBlock::Overflow { index };
        sender.balance = rest;
        sender.nonce = sender.nonce.checked_add(1).ok_or(overflow.clone())?;
        let recipient = touched.get(&tx.to)?;
        recipient.balance = recipient
            .balance
            .checked_add(tx.amount)
            .ok_or(overflow.clone())?;
        fees = fees.checked_add(tx.fee).ok_or(overflow)?;
    }

    let coinbase_total = block
        .coinbase
        .total_output()
        .map_err(|_| InvalidBlock::CoinbaseOverflow)?;
    let allowed = reward
        .checked_add(fees)
        .ok_or(InvalidBlock::CoinbaseOverflow)?;
    if coinbase_total > allowed {
        return Err(InvalidBlock::CoinbaseTooLarge {
            outputs: coinbase_total,
            allowed,
        }
        .into());
    }
    for output in block.coinbase.outputs.iter() {
        let account = touched.get(&output.to)?;
        account
            .add_immature(height, output.amount)
            .map_err(|e: AccountError| InvalidBlock::CoinbaseCredit {
                address: output.to,
                reason: e.to_string(),
            })?;
    }
    Ok(BlockEffects {
        changes: touched.accounts.into_iter().collect(),
        fees,
        coinbase_total,
    })
}

/// The state of `account` as seen at `tip_height`: credits that are mature by then counted in
/// the balance. Used by queries, which see accounts the chain has not touched for a while.
pub fn account_at(mut account: Account, tip_height: Height, maturity: u64) -> Account {
    let _ = account.mature(tip_height, maturity);
    account
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::tests::block as sample_block;
    use crate::encoding::BoundedVec;
    use crate::tx::{CoinbaseOutput, UnsignedTransfer};
    use crate::{ChainId, Keypair, PublicKey};
    use std::convert::Infallible;

    fn transfer(key: &Keypair, to: Address, amount: u64, fee: u64, nonce: u64) -> crate::Transfer {
        UnsignedTransfer {
            from: key.public(),
            to,
            amount: Amount(amount),
            fee: Amount(fee),
            nonce,
            chain_id: ChainId(1),
        }
        .sign(key)
        .unwrap()
    }

    fn block_with(transfers: Vec<crate::Transfer>, outputs: Vec<(Address, u64)>) -> Block {
        let key = Keypair::generate();
        let mut b = sample_block(&key, 0);
        b.transfers = BoundedVec::try_from_vec(transfers).unwrap();
        b.coinbase.outputs = BoundedVec::try_from_vec(
            outputs
                .into_iter()
                .map(|(to, amount)| CoinbaseOutput {
                    to,
                    amount: Amount(amount),
                })
                .collect(),
        )
        .unwrap();
        b
    }

    fn run(
        block: &Block,
        height: Height,
        state: &HashMap<Address, Account>,
    ) -> Result<BlockEffects, InvalidBlock> {
        apply_block(block, height, 10, Amount(1_000), |a: &Address| {
            Ok::<_, Infallible>(state.get(a).cloned())
        })
        .map_err(|e| match e {
            TransitionError::Invalid(i) => i,
            TransitionError::Source(never) => match never {},
        })
    }

    fn after(effects: &BlockEffects, a: &Address) -> Account {
        effects
            .changes
            .iter()
            .find(|(k, _)| k == a)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    #[test]
    fn transfers_move_coins_and_fees_go_to_the_coinbase() {
        let alice = Keypair::generate();
        let bob = PublicKey([2; 32]);
        let miner = PublicKey([3; 32]);
        let state = HashMap::from([(alice.public(), Account::new(Amount(500), 0))]);
        let b = block_with(
            vec![
                transfer(&alice, bob, 100, 5, 0),
                transfer(&alice, bob, 50, 5, 1),
            ],
            vec![(miner, 1_010)],
        );
        let fx = run(&b, 20, &state).unwrap();
        assert_eq!(fx.fees, Amount(10));
        assert_eq!(fx.coinbase_total, Amount(1_010));
        assert_eq!(after(&fx, &alice.public()), Account::new(Amount(340), 2));
        assert_eq!(after(&fx, &bob), Account::new(Amount(150), 0));
        let m = after(&fx, &miner);
        assert_eq!(m.balance, Amount::ZERO);
        assert_eq!(m.immature_total().unwrap(), Amount(1_010));
        // One unit more than reward + fees is refused.
        let greedy = block_with(vec![transfer(&alice, bob, 100, 5, 0)], vec![(miner, 1_006)]);
        assert!(matches!(
            run(&greedy, 20, &state),
            Err(InvalidBlock::CoinbaseTooLarge { .. })
        ));
    }

    #[test]
    fn nonce_balance_and_overflow_rules() {
        let alice = Keypair::generate();
        let bob = PublicKey([2; 32]);
        let state = HashMap::from([
            (alice.public(), Account::new(Amount(100), 3)),
            (bob, Account::new(Amount(u64::MAX - 10), 0)),
        ]);
        let wrong_nonce = block_with(vec![transfer(&alice, bob, 1, 0, 2)], vec![]);
        assert_eq!(
            run(&wrong_nonce, 1, &state),
            Err(InvalidBlock::Nonce {
                index: 0,
                expected: 3,
                found: 2
            })
        );
        let too_much = block_with(vec![transfer(&alice, bob, 96, 5, 3)], vec![]);
        assert!(matches!(
            run(&too_much, 1, &state),
            Err(InvalidBlock::InsufficientBalance { index: 0, .. })
        ));
        let overflow = block_with(vec![transfer(&alice, bob, 11, 0, 3)], vec![]);
        assert_eq!(
            run(&overflow, 1, &state),
            Err(InvalidBlock::Overflow { index: 0 })
        );
        let exact = block_with(vec![transfer(&alice, bob, 10, 90, 3)], vec![]);
        let fx = run(&exact, 1, &state).unwrap();
        assert_eq!(after(&fx, &alice.public()), Account::new(Amount::ZERO, 4));
    }

    #[test]
    fn coinbase_credits_mature_exactly_at_the_maturity_height() {
        let alice = Keypair::generate();
        let bob = PublicKey([2; 32]);
        let mut acct = Account::default();
        acct.add_immature(5, Amount(300)).unwrap();
        let state = HashMap::from([(alice.public(), acct)]);
        let spend = block_with(vec![transfer(&alice, bob, 200, 0, 0)], vec![]);
        // Maturity 10: the credit of height 5 is spendable from height 15 on.
        match run(&spend, 14, &state) {
            Err(InvalidBlock::InsufficientBalance {
                available,
                immature,
                ..
            }) => {
                assert_eq!(available, Amount::ZERO);
                assert_eq!(immature, Amount(300));
            }
            other => panic!("{other:?}"),
        }
        let fx = run(&spend, 15, &state).unwrap();
        let a = after(&fx, &alice.public());
        assert_eq!(a.balance, Amount(100));
        assert!(a.immature.is_empty());
        assert_eq!(
            account_at(state[&alice.public()].clone(), 15, 10).balance,
            Amount(300)
        );
        assert_eq!(
            account_at(state[&alice.public()].clone(), 14, 10).balance,
            Amount::ZERO
        );
    }

    #[test]
    fn self_transfer_pays_only_the_fee() {
        let alice = Keypair::generate();
        let state = HashMap::from([(alice.public(), Account::new(Amount(100), 0))]);
        let b = block_with(vec![transfer(&alice, alice.public(), 60, 7, 0)], vec![]);
        let fx = run(&b, 1, &state).unwrap();
        assert_eq!(after(&fx, &alice.public()), Account::new(Amount(93), 1));
    }
}

//! The Emission actor: the genesis emission schedule, answering reward and supply queries for
//! the other actors (the miner asks it what a block may claim, operators what the schedule
//! allows against what the chain issued).

use actix::{Actor, Context, Handler, Message, MessageResult};
use spacetime::emission::Emission;
use spacetime::{Amount, Height};

/// The reward a block at `height` may claim, before fees.
#[derive(Debug, Message)]
#[rtype(result = "Amount")]
pub struct GetReward(pub Height);

/// Coins the schedule allows in existence after `height` (premine included).
#[derive(Debug, Message)]
#[rtype(result = "Amount")]
pub struct GetScheduledSupply(pub Height);

/// Compares an issued supply with the schedule at a height.
#[derive(Debug, Message)]
#[rtype(result = "SupplyCheck")]
pub struct CheckSupply {
    /// Height.
    pub height: Height,
    /// Coins the chain issued by then.
    pub issued: Amount,
}

/// The answer to [`CheckSupply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupplyCheck {
    /// What the schedule allows.
    pub scheduled: Amount,
    /// `scheduled - issued` (negative would mean issuance above the schedule).
    pub difference: i128,
}

/// The actor: owns the compiled schedule (cheap to query: O(1) per height).
#[derive(Debug)]
pub struct EmissionActor {
    emission: Emission,
}

impl EmissionActor {
    /// An actor answering for `emission`.
    pub fn new(emission: Emission) -> Self {
        Self { emission }
    }
}

impl Actor for EmissionActor {
    type Context = Context<Self>;
}

impl Handler<GetReward> for EmissionActor {
    type Result = MessageResult<GetReward>;
    fn handle(&mut self, msg: GetReward, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.emission.block_reward(msg.0))
    }
}

impl Handler<GetScheduledSupply> for EmissionActor {
    type Result = MessageResult<GetScheduledSupply>;
    fn handle(&mut self, msg: GetScheduledSupply, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.emission.cumulative_supply(msg.0))
    }
}

impl Handler<CheckSupply> for EmissionActor {
    type Result = MessageResult<CheckSupply>;
    fn handle(&mut self, msg: CheckSupply, _: &mut Context<Self>) -> Self::Result {
        let scheduled = self.emission.cumulative_supply(msg.height);
        MessageResult(SupplyCheck {
            scheduled,
            difference: i128::from(scheduled.0) - i128::from(msg.issued.0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spacetime::Genesis;

    #[actix_rt::test]
    async fn answers_reward_and_supply() {
        let g = Genesis::builtin("dev").unwrap();
        let addr = EmissionActor::new(g.emission.clone()).start();
        assert_eq!(addr.send(GetReward(0)).await.unwrap(), Amount::ZERO);
        assert_eq!(
            addr.send(GetReward(1)).await.unwrap(),
            g.emission.block_reward(1)
        );
        let s = addr.send(GetScheduledSupply(10)).await.unwrap();
        assert_eq!(s, g.emission.cumulative_supply(10));
        let c = addr
            .send(CheckSupply {
                height: 10,
                issued: Amount(s.0 - 5),
            })
            .await
            .unwrap();
        assert_eq!(c.difference, 5);
    }
}

//! The Emission actor: the genesis emission schedule and its supply counters. It follows the
//! chain's tip (NewTip and Reorg events) and publishes what the schedule allows there (the
//! reward of the next block, the supply scheduled by the tip) as gauges beside the chain's own,
//! and answers reward and supply queries (tools and, next, the RPC interface).

use actix::{Actor, Context, Handler, Message, MessageResult};
use spacetime::chain::ChainEvent;
use spacetime::emission::Emission;
use spacetime::{Amount, Height};

use crate::chain::ChainNotification;

/// The reward (before fees) the next block on the tip may claim, in smallest units.
pub const NEXT_REWARD: &str = "spacetime_emission_next_block_reward";
/// The supply the schedule allows by the tip (premine included), in smallest units.
pub const SCHEDULED_SUPPLY: &str = "spacetime_emission_scheduled_supply";
/// The tip height the emission gauges are for.
pub const TIP_HEIGHT: &str = "spacetime_emission_tip_height";

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

/// The tip height the actor's counters are at.
#[derive(Debug, Message)]
#[rtype(result = "Option<Height>")]
pub struct GetEmissionTip;

/// The actor: owns the compiled schedule (cheap to query: O(1) per height).
#[derive(Debug)]
pub struct EmissionActor {
    emission: Emission,
    /// The tip height last heard from ChainState.
    tip: Option<Height>,
}

impl EmissionActor {
    /// An actor answering for `emission`.
    pub fn new(emission: Emission) -> Self {
        Self {
            emission,
            tip: None,
        }
    }

    fn follow(&mut self, height: Height) {
        self.tip = Some(height);
        let next = self.emission.block_reward(height.saturating_add(1));
        let scheduled = self.emission.cumulative_supply(height);
        // Gauges are f64: exact up to 2^53 smallest units, enough to follow the schedule.
        metrics::gauge!(NEXT_REWARD).set(next.0 as f64);
        metrics::gauge!(SCHEDULED_SUPPLY).set(scheduled.0 as f64);
        metrics::gauge!(TIP_HEIGHT).set(height as f64);
    }
}

impl Actor for EmissionActor {
    type Context = Context<Self>;
}

impl Handler<ChainNotification> for EmissionActor {
    type Result = ();
    fn handle(&mut self, msg: ChainNotification, _: &mut Context<Self>) {
        let height = match msg.0 {
            ChainEvent::NewTip { height, .. } => height,
            ChainEvent::Reorg {
                fork_height,
                connected,
                ..
            } => fork_height.saturating_add(connected.len() as Height),
        };
        self.follow(height);
    }
}

impl Handler<GetEmissionTip> for EmissionActor {
    type Result = Option<Height>;
    fn handle(&mut self, _: GetEmissionTip, _: &mut Context<Self>) -> Option<Height> {
        self.tip
    }
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

impl actix::Handler<crate::lifecycle::Stop> for EmissionActor {
    type Result = ();
    fn handle(&mut self, _: crate::lifecycle::Stop, ctx: &mut actix::Context<Self>) {
        actix::ActorContext::stop(ctx);
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

    #[actix_rt::test]
    async fn follows_the_tip_through_new_tips_and_reorgs() {
        let g = Genesis::builtin("dev").unwrap();
        let addr = EmissionActor::new(g.emission.clone()).start();
        assert_eq!(addr.send(GetEmissionTip).await.unwrap(), None);
        let hash = spacetime::Hash::ZERO;
        addr.send(ChainNotification(ChainEvent::NewTip { hash, height: 7 }))
            .await
            .unwrap();
        assert_eq!(addr.send(GetEmissionTip).await.unwrap(), Some(7));
        let reorg = ChainEvent::Reorg {
            old_tip: hash,
            new_tip: hash,
            fork_height: 5,
            disconnected: vec![hash; 2],
            connected: vec![hash; 3],
        };
        addr.send(ChainNotification(reorg)).await.unwrap();
        assert_eq!(addr.send(GetEmissionTip).await.unwrap(), Some(8));
    }
}

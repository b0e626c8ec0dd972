//! The emission configuration: the block reward schedules of a network, as TOML.

use serde::{Deserialize, Serialize};

use crate::{Amount, Height};

/// Block reward schedule (see `docs/emission.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmissionConfig {
    /// Reward of the first block, in smallest units.
    pub initial_reward: Amount,
    /// Total supply (premine included) that issuance never exceeds.
    #[serde(default)]
    pub cap: Option<Amount>,
    /// Smallest reward while the cap is not reached.
    #[serde(default)]
    pub floor: Amount,
    /// Schedules in activation order; the first activates at height 0.
    pub schedules: Vec<ScheduleVersion>,
}

/// A schedule and the height from which it applies.
///
/// In TOML it is one table: `activation_height`, `type`, and the fields of that type only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawScheduleVersion", into = "RawScheduleVersion")]
pub struct ScheduleVersion {
    /// First height at which this schedule applies.
    pub activation_height: Height,
    /// The curve.
    pub schedule: Schedule,
}

/// The reward curves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// The reward halves every `interval` blocks.
    Halving {
        /// Blocks between halvings.
        interval: u64,
    },
    /// The reward halves smoothly every `half_life_blocks` blocks.
    ExponentialDecay {
        /// Blocks for the reward to halve.
        half_life_blocks: u64,
    },
    /// The reward drops by a fixed amount each block.
    LinearDecay {
        /// Decrease per block, in smallest units.
        decrease_per_block: Amount,
    },
    /// The same reward every block.
    Fixed {
        /// Reward per block.
        reward: Amount,
    },
    /// Rewards by explicit height ranges.
    CustomTable {
        /// Non-overlapping ranges in ascending order.
        ranges: Vec<TableRange>,
    },
}

/// Names of the schedule types in TOML.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ScheduleType {
    Halving,
    ExponentialDecay,
    LinearDecay,
    Fixed,
    CustomTable,
}

/// The TOML form of a [`ScheduleVersion`]: every field of every type, each optional.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScheduleVersion {
    activation_height: Height,
    #[serde(rename = "type")]
    kind: ScheduleType,
    #[serde(default)]
    interval: Option<u64>,
    #[serde(default)]
    half_life_blocks: Option<u64>,
    #[serde(default)]
    decrease_per_block: Option<Amount>,
    #[serde(default)]
    reward: Option<Amount>,
    #[serde(default)]
    ranges: Option<Vec<TableRange>>,
}

impl TryFrom<RawScheduleVersion> for ScheduleVersion {
    type Error = String;
    fn try_from(raw: RawScheduleVersion) -> Result<Self, String> {
        let type_name = match raw.kind {
            ScheduleType::Halving => "halving",
            ScheduleType::ExponentialDecay => "exponential_decay",
            ScheduleType::LinearDecay => "linear_decay",
            ScheduleType::Fixed => "fixed",
            ScheduleType::CustomTable => "custom_table",
        };
        let present = [
            ("interval", raw.interval.is_some()),
            ("half_life_blocks", raw.half_life_blocks.is_some()),
            ("decrease_per_block", raw.decrease_per_block.is_some()),
            ("reward", raw.reward.is_some()),
            ("ranges", raw.ranges.is_some()),
        ];
        let wanted = match raw.kind {
            ScheduleType::Halving => "interval",
            ScheduleType::ExponentialDecay => "half_life_blocks",
            ScheduleType::LinearDecay => "decrease_per_block",
            ScheduleType::Fixed => "reward",
            ScheduleType::CustomTable => "ranges",
        };
        for (name, is_present) in present {
            if is_present && name != wanted {
                return Err(format!(
                    "field `{name}` does not apply to schedule type `{type_name}`"
                ));
            }
        }
        let missing = || format!("schedule type `{type_name}` needs field `{wanted}`");
        let schedule = match raw.kind {
            ScheduleType::Halving => Schedule::Halving {
                interval: raw.interval.ok_or_else(missing)?,
            },
            ScheduleType::ExponentialDecay => Schedule::ExponentialDecay {
                half_life_blocks: raw.half_life_blocks.ok_or_else(missing)?,
            },
            ScheduleType::LinearDecay => Schedule::LinearDecay {
                decrease_per_block: raw.decrease_per_block.ok_or_else(missing)?,
            },
            ScheduleType::Fixed => Schedule::Fixed {
                reward: raw.reward.ok_or_else(missing)?,
            },
            ScheduleType::CustomTable => Schedule::CustomTable {
                ranges: raw.ranges.ok_or_else(missing)?,
            },
        };
        Ok(Self {
            activation_height: raw.activation_height,
            schedule,
        })
    }
}

impl From<ScheduleVersion> for RawScheduleVersion {
    fn from(v: ScheduleVersion) -> Self {
        let mut raw = RawScheduleVersion {
            activation_height: v.activation_height,
            kind: ScheduleType::Fixed,
            interval: None,
            half_life_blocks: None,
            decrease_per_block: None,
            reward: None,
            ranges: None,
        };
        match v.schedule {
            Schedule::Halving { interval } => {
                raw.kind = ScheduleType::Halving;
                raw.interval = Some(interval);
            }
            Schedule::ExponentialDecay { half_life_blocks } => {
                raw.kind = ScheduleType::ExponentialDecay;
                raw.half_life_blocks = Some(half_life_blocks);
            }
            Schedule::LinearDecay { decrease_per_block } => {
                raw.kind = ScheduleType::LinearDecay;
                raw.decrease_per_block = Some(decrease_per_block);
            }
            Schedule::Fixed { reward } => raw.reward = Some(reward),
            Schedule::CustomTable { ranges } => {
                raw.kind = ScheduleType::CustomTable;
                raw.ranges = Some(ranges);
            }
        }
        raw
    }
}

/// One row of a custom reward table: heights `start..end` pay `reward`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableRange {
    /// First height of the range.
    pub start: Height,
    /// First height after the range.
    pub end: Height,
    /// Reward per block in the range.
    pub reward: Amount,
}

//! `spacetime emission`: print a network's reward schedule and draw it as SVG.

use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};

use spacetime::emission::Emission;
use spacetime::genesis::BUILTIN_NETWORKS;
use spacetime::{Genesis, Height};

use super::{CliError, read_text_file};

/// Options of `spacetime emission`.
#[derive(Debug, Clone, clap::Args)]
pub struct EmissionArgs {
    /// A built-in network (dev, testnet) or a genesis configuration file.
    #[arg(long, value_name = "NAME|FILE", default_value = "dev")]
    pub network: String,
    /// Evenly spaced rows of the table (activation and cap heights are added).
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = clap::value_parser!(u16).range(2..=1000))]
    pub rows: u16,
    /// Also draw the supply and reward curves into this SVG file.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
}

pub(super) fn run(args: EmissionArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let genesis = if BUILTIN_NETWORKS.contains(&args.network.as_str()) {
        Genesis::builtin(&args.network)?
    } else {
        let path = Path::new(&args.network);
        let text = read_text_file(path, spacetime::genesis::MAX_GENESIS_TOML_BYTES)?;
        Genesis::from_toml_str(&text).map_err(|e| super::with_file_context(e, path))?
    };
    let emission = &genesis.emission;
    let horizon = horizon(emission);
    let mut heights: Vec<Height> = (0..u64::from(args.rows))
        .map(|i| fraction_of(horizon, i, u64::from(args.rows - 1)))
        .collect();
    heights.extend(emission.activation_heights().filter(|&h| h <= horizon));
    heights.extend(emission.cap_height());
    heights.sort_unstable();
    heights.dedup();

    let denominator = emission.cap().unwrap_or(emission.supply_limit()).units();
    let share_label = if emission.cap().is_some() {
        "% of cap"
    } else {
        "% of limit"
    };
    writeln!(out, "network:         {}", genesis.config.network.name)?;
    writeln!(
        out,
        "initial reward:  {}",
        genesis.config.emission.initial_reward
    )?;
    writeln!(out, "premine:         {}", emission.premine())?;
    match emission.cap() {
        Some(cap) => writeln!(out, "cap:             {cap}")?,
        None => writeln!(out, "cap:             none")?,
    }
    writeln!(out, "supply limit:    {}", emission.supply_limit())?;
    if let Some(h) = emission.cap_height() {
        writeln!(out, "cap reached at:  height {h}")?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "{:>14}  {:>20}  {:>22}  {:>10}",
        "height", "reward", "cumulative supply", share_label
    )?;
    for h in heights {
        let supply = emission.cumulative_supply(h).units();
        writeln!(
            out,
            "{:>14}  {:>20}  {:>22}  {:>10}",
            h,
            emission.block_reward(h).units(),
            supply,
            percent(supply, denominator)
        )?;
    }
    if let Some(path) = args.svg {
        let svg = draw_svg(&genesis.config.network.name, emission, horizon);
        std::fs::write(&path, svg).map_err(|error| CliError::WriteFile {
            path: path.clone(),
            error,
        })?;
        writeln!(out, "\nwrote {}", path.display())?;
    }
    Ok(())
}

/// The height by which 99.99 % of the supply limit exists (at least 10, so a chart has width).
fn horizon(emission: &Emission) -> Height {
    let limit = emission.supply_limit().units();
    let target = limit - limit / 10_000;
    emission
        .height_reaching(spacetime::Amount(target))
        .unwrap_or(0)
        .max(10)
}

/// `height * i / n` without overflow (`i <= n`, so the result is at most `height`).
fn fraction_of(height: Height, i: u64, n: u64) -> Height {
    (u128::from(height) * u128::from(i) / u128::from(n.max(1))) as Height
}

/// `part / whole` as a percentage with two decimals, in integers.
fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "-".to_owned();
    }
    let hundredths = u128::from(part) * 10_000 / u128::from(whole);
    format!("{}.{:02}%", hundredths / 100, hundredths % 100)
}

const WIDTH: f64 = 860.0;
const HEIGHT: f64 = 500.0;
const LEFT: f64 = 110.0;
const RIGHT: f64 = 110.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 60.0;
const SAMPLES: u64 = 600;

/// Draws cumulative supply (left axis) and block reward (right axis) against height.
fn draw_svg(name: &str, emission: &Emission, horizon: Height) -> String {
    // Floats are fine here: this only draws a picture.
    let heights: Vec<Height> = (0..=SAMPLES)
        .map(|i| fraction_of(horizon, i, SAMPLES))
        .collect();
    let max_supply = emission.supply_limit().units().max(1) as f64;
    let max_reward = heights
        .iter()
        .map(|&h| emission.block_reward(h).units())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |h: Height| LEFT + plot_w * h as f64 / horizon as f64;
    let y = |v: f64, max: f64| TOP + plot_h * (1.0 - v / max);
    let line = |value: &dyn Fn(Height) -> f64, max: f64| {
        let mut points = String::new();
        for &h in &heights {
            let _ = write!(points, "{:.1},{:.1} ", x(h), y(value(h), max));
        }
        points
    };
    let supply = line(
        &|h| emission.cumulative_supply(h).units() as f64,
        max_supply,
    );
    // Genesis pays nothing; start the reward curve at block 1 so it does not dip to zero.
    let reward = line(
        &|h| emission.block_reward(h.max(1)).units() as f64,
        max_reward,
    );

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{:.0}" y="28" font-size="16" text-anchor="middle">Spacetime emission: {}</text>"#,
        WIDTH / 2.0,
        escape(name)
    );
    for i in 0..=5u32 {
        let f = f64::from(i) / 5.0;
        let gy = TOP + plot_h * (1.0 - f);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{gy:.1}" x2="{:.1}" y2="{gy:.1}" stroke="#e5e5e5"/>"##,
            WIDTH - RIGHT
        );
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#1f5fbf">{}</text>"##,
            LEFT - 8.0,
            gy + 4.0,
            compact(max_supply * f)
        );
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" fill="#c0392b">{}</text>"##,
            WIDTH - RIGHT + 8.0,
            gy + 4.0,
            compact(max_reward * f)
        );
        let h = (horizon as f64 * f) as u64;
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            x(h),
            HEIGHT - BOTTOM + 20.0,
            compact(h as f64)
        );
    }
    let _ = writeln!(
        svg,
        r#"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="black"/>"#
    );
    let _ = writeln!(
        svg,
        r##"<polyline points="{supply}" fill="none" stroke="#1f5fbf" stroke-width="2"/>"##
    );
    let _ = writeln!(
        svg,
        r##"<polyline points="{reward}" fill="none" stroke="#c0392b" stroke-width="2"/>"##
    );
    let _ = writeln!(
        svg,
        r#"<text x="{:.0}" y="{:.0}" text-anchor="middle">block height</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 15.0
    );
    let _ = writeln!(
        svg,
        r##"<text x="{LEFT}" y="{:.0}" fill="#1f5fbf">— cumulative supply (left axis)</text>"##,
        TOP - 8.0
    );
    let _ = writeln!(
        svg,
        r##"<text x="{:.0}" y="{:.0}" text-anchor="end" fill="#c0392b">block reward (right axis) —</text>"##,
        WIDTH - RIGHT,
        TOP - 8.0
    );
    svg.push_str("</svg>\n");
    svg
}

/// A short axis label: 1.5k, 2.1M, 21G, ...
fn compact(v: f64) -> String {
    const UNITS: [(f64, &str); 5] = [(1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")];
    for (scale, suffix) in UNITS {
        if v >= scale {
            let digits = format!("{:.2}", v / scale);
            return format!(
                "{}{suffix}",
                digits.trim_end_matches('0').trim_end_matches('.')
            );
        }
    }
    format!("{v:.0}")
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_is_integer_and_rounds_down() {
        assert_eq!(percent(1, 3), "33.33%");
        assert_eq!(percent(2, 3), "66.66%");
        assert_eq!(percent(5, 5), "100.00%");
        assert_eq!(percent(u64::MAX, u64::MAX), "100.00%");
        assert_eq!(percent(1, 0), "-");
    }

    #[test]
    fn svg_is_well_formed() {
        let g = Genesis::builtin("dev").unwrap();
        let svg = draw_svg("dev <&>", &g.emission, horizon(&g.emission));
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("dev &lt;&amp;&gt;"));
        assert!(!svg.contains("NaN"));
    }

    #[test]
    fn compact_labels() {
        assert_eq!(compact(16.8e15), "16.8P");
        assert_eq!(compact(21e15), "21P");
        assert_eq!(compact(1234.0), "1.23k");
        assert_eq!(compact(999.0), "999");
    }

    #[test]
    fn sample_heights_do_not_overflow_on_far_horizons() {
        let far = u64::MAX / 3;
        assert_eq!(fraction_of(far, 0, 600), 0);
        assert_eq!(fraction_of(far, 600, 600), far);
        assert_eq!(fraction_of(far, 300, 600), far / 2);
        assert_eq!(fraction_of(10, 1, 0), 10, "n = 0 reads as 1");
    }
}

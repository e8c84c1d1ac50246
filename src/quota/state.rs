//! Quota states and their changes: ok → warn (at `warn_percent`, or early on the estimate) →
//! over (at 100 %). Within a period a state only rises: volume only grows, and the billable
//! 95th percentile so far only grows too, so nothing flaps. A state goes down at the next
//! billing period (to ok), or when the allotment changes — and then only once the use is
//! `hysteresis_percent` points below the state's threshold, so that a small raise does not
//! unshape a customer who is over again minutes later. Pure functions.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum State {
    Ok,
    Warn,
    Over,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Ok => "ok",
            State::Warn => "warn",
            State::Over => "over",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ok" => Some(State::Ok),
            "warn" => Some(State::Warn),
            "over" => Some(State::Over),
            _ => None,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub warn_percent: f64,
    pub hysteresis_percent: f64,
    pub warn_on_estimate: bool,
}

/// One measurement of a customer against its allotment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading<'a> {
    pub period_start: i64,
    pub used: u64,
    pub estimate: u64,
    pub allotment: u64,
    pub unit: &'a str,
}

/// What was decided last time.
#[derive(Debug, Clone, PartialEq)]
pub struct Prior {
    pub state: State,
    pub period_start: i64,
    pub allotment: u64,
    pub unit: String,
}

/// One state change and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub from: State,
    pub to: State,
    pub reason: String,
    /// The change belongs to the start of the period (a reset), not to the time of the check.
    pub at_period_start: bool,
}

/// `used` as a percentage of `allotment`.
pub fn percent(used: u64, allotment: u64) -> f64 {
    if allotment == 0 {
        return if used == 0 { 0.0 } else { f64::INFINITY };
    }
    used as f64 * 100.0 / allotment as f64
}

/// The state a reading calls for, each threshold lowered by `slack` points.
fn level(r: &Reading<'_>, t: &Thresholds, slack: f64) -> State {
    let used = percent(r.used, r.allotment);
    let projected = percent(r.estimate, r.allotment);
    if used >= 100.0 - slack {
        State::Over
    } else if used >= t.warn_percent - slack || (t.warn_on_estimate && projected >= 100.0 - slack) {
        State::Warn
    } else {
        State::Ok
    }
}

fn rise_reason(r: &Reading<'_>, t: &Thresholds, to: State) -> String {
    let used = percent(r.used, r.allotment);
    if to == State::Warn && used < t.warn_percent {
        format!(
            "estimate {:.1}% of the allotment by the end of the period",
            percent(r.estimate, r.allotment)
        )
    } else {
        format!("used {used:.1}% of the allotment")
    }
}

/// The changes from `prior` (none: a customer never checked, taken as ok) that `reading` calls
/// for, in order. A reading of an older period than the prior's decides nothing.
pub fn changes(prior: Option<&Prior>, r: &Reading<'_>, t: &Thresholds) -> Vec<Change> {
    let mut out = Vec::new();
    let mut state = State::Ok;
    if let Some(p) = prior {
        if r.period_start < p.period_start {
            return out;
        }
        state = p.state;
        if r.period_start > p.period_start {
            if state != State::Ok {
                out.push(Change {
                    from: state,
                    to: State::Ok,
                    reason: "new billing period".into(),
                    at_period_start: true,
                });
            }
            state = State::Ok;
        } else if r.allotment != p.allotment || r.unit != p.unit {
            // A different kind of allotment starts afresh; a changed amount keeps the state
            // until the use is clearly below its threshold.
            let slack = if r.unit == p.unit {
                t.hysteresis_percent
            } else {
                0.0
            };
            let keep = level(r, t, slack);
            if keep < state {
                out.push(Change {
                    from: state,
                    to: keep,
                    reason: format!(
                        "allotment changed from {} to {} {}: used {:.1}%",
                        p.allotment,
                        r.allotment,
                        r.unit,
                        percent(r.used, r.allotment)
                    ),
                    at_period_start: false,
                });
                state = keep;
            }
        }
    }
    let up = level(r, t, 0.0);
    if up > state {
        out.push(Change {
            from: state,
            to: up,
            reason: rise_reason(r, t, up),
            at_period_start: false,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Thresholds = Thresholds {
        warn_percent: 80.0,
        hysteresis_percent: 5.0,
        warn_on_estimate: false,
    };

    fn reading(period_start: i64, used: u64, allotment: u64) -> Reading<'static> {
        Reading {
            period_start,
            used,
            estimate: used,
            allotment,
            unit: "bytes",
        }
    }

    fn prior(state: State, period_start: i64, allotment: u64) -> Prior {
        Prior {
            state,
            period_start,
            allotment,
            unit: "bytes".into(),
        }
    }

    fn steps(c: &[Change]) -> Vec<(State, State)> {
        c.iter().map(|c| (c.from, c.to)).collect()
    }

    use State::*;

    #[test]
    fn states_rise_at_their_thresholds() {
        assert_eq!(steps(&changes(None, &reading(0, 79, 100), &T)), vec![]);
        assert_eq!(
            steps(&changes(None, &reading(0, 80, 100), &T)),
            vec![(Ok, Warn)]
        );
        assert_eq!(
            steps(&changes(None, &reading(0, 100, 100), &T)),
            vec![(Ok, Over)]
        );
        let c = changes(Some(&prior(Warn, 0, 100)), &reading(0, 150, 100), &T);
        assert_eq!(steps(&c), vec![(Warn, Over)]);
        assert_eq!(c[0].reason, "used 150.0% of the allotment");
        // Already there: nothing to say.
        assert_eq!(
            steps(&changes(
                Some(&prior(Over, 0, 100)),
                &reading(0, 180, 100),
                &T
            )),
            vec![]
        );
    }

    #[test]
    fn within_a_period_states_never_fall() {
        // A 95th percentile estimate may fall; the state does not.
        assert_eq!(
            steps(&changes(
                Some(&prior(Over, 0, 100)),
                &reading(0, 10, 100),
                &T
            )),
            vec![]
        );
        assert_eq!(
            steps(&changes(
                Some(&prior(Warn, 0, 100)),
                &reading(0, 0, 100),
                &T
            )),
            vec![]
        );
    }

    #[test]
    fn a_new_period_resets_to_ok_then_rises_again() {
        let c = changes(Some(&prior(Over, 0, 100)), &reading(1000, 5, 100), &T);
        assert_eq!(steps(&c), vec![(Over, Ok)]);
        assert!(c[0].at_period_start);
        let c = changes(Some(&prior(Over, 0, 100)), &reading(1000, 120, 100), &T);
        assert_eq!(steps(&c), vec![(Over, Ok), (Ok, Over)]);
        assert_eq!(
            steps(&changes(
                Some(&prior(Ok, 0, 100)),
                &reading(1000, 5, 100),
                &T
            )),
            vec![]
        );
        // An older period (a late replay) decides nothing.
        assert_eq!(
            steps(&changes(
                Some(&prior(Ok, 1000, 100)),
                &reading(0, 500, 100),
                &T
            )),
            vec![]
        );
    }

    #[test]
    fn a_raised_allotment_lowers_the_state_past_the_hysteresis() {
        let over = prior(Over, 0, 100);
        // 101 of 104 is 97 %: within 5 points of 100, still over.
        assert_eq!(
            steps(&changes(Some(&over), &reading(0, 101, 104), &T)),
            vec![]
        );
        // 101 of 110 is 91.8 %: below 95, over → warn (and not below 75: stays warn).
        let c = changes(Some(&over), &reading(0, 101, 110), &T);
        assert_eq!(steps(&c), vec![(Over, Warn)]);
        assert_eq!(
            c[0].reason,
            "allotment changed from 100 to 110 bytes: used 91.8%"
        );
        // 101 of 1000: back to ok.
        assert_eq!(
            steps(&changes(Some(&over), &reading(0, 101, 1000), &T)),
            vec![(Over, Ok)]
        );
        // Warn at 80 % leaves at below 75 %.
        let warn = prior(Warn, 0, 100);
        assert_eq!(
            steps(&changes(Some(&warn), &reading(0, 80, 104), &T)),
            vec![]
        );
        assert_eq!(
            steps(&changes(Some(&warn), &reading(0, 80, 110), &T)),
            vec![(Warn, Ok)]
        );
        // A lowered allotment can only raise the state.
        assert_eq!(
            steps(&changes(Some(&warn), &reading(0, 80, 50), &T)),
            vec![(Warn, Over)]
        );
        // A change of kind (volume → 95th percentile) starts afresh, without hysteresis.
        let p95 = Reading {
            unit: "bit/s",
            ..reading(0, 97, 100)
        };
        assert_eq!(steps(&changes(Some(&over), &p95, &T)), vec![(Over, Warn)]);
    }

    #[test]
    fn the_estimate_warns_early_when_asked() {
        let r = Reading {
            estimate: 130,
            ..reading(0, 20, 100)
        };
        assert_eq!(steps(&changes(None, &r, &T)), vec![]);
        let early = Thresholds {
            warn_on_estimate: true,
            ..T
        };
        let c = changes(None, &r, &early);
        assert_eq!(steps(&c), vec![(Ok, Warn)]);
        assert_eq!(
            c[0].reason,
            "estimate 130.0% of the allotment by the end of the period"
        );
    }
}

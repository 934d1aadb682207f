//! `check --junit FILE`: the check's verdicts as JUnit XML, one test case per property, for CI
//! systems that show test reports (docs/checking.md, "JUnit report").

use crate::checking::{Report, Verdict};
use aurora_redo_model::properties::explain;
use aurora_redo_model::{Config, Preset};
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;
use std::path::Path;

/// The `classname` of every test case: `aurora-redo.check.<preset>`, followed by the options
/// that differ from the preset (`aurora-redo.check.quick+lsns=2+bug=commit-at-three`).
pub fn classname(preset: Preset, config: &Config) -> String {
    let base = Config::preset(preset).to_string();
    let base: Vec<&str> = base.split(' ').collect();
    let mut name = format!("aurora-redo.check.{preset}");
    for item in config.to_string().split(' ') {
        if !base.contains(&item) {
            name.push('+');
            name.push_str(item);
        }
    }
    name
}

/// How one property shows in the report.
enum Outcome {
    Passed { output: Option<String> },
    Failed { message: String, text: String },
    Skipped { message: String },
}

fn numbered(report: &Report, name: &str) -> String {
    report
        .properties
        .iter()
        .find(|p| p.name == name)
        .and_then(|p| p.steps.as_ref())
        .map(|steps| steps.join("\n"))
        .unwrap_or_default()
}

fn outcome(report: &Report, name: &str, verdict: &Verdict, expected: Option<&str>) -> Outcome {
    let is_expected = expected == Some(name);
    match verdict {
        Verdict::Violated if is_expected => Outcome::Passed {
            output: Some(format!(
                "violated, as expected. Counterexample:\n{}",
                numbered(report, name)
            )),
        },
        Verdict::Violated => Outcome::Failed {
            message: format!("{name} is violated"),
            text: format!(
                "{name} is violated. Counterexample:\n{}\nWhy it matters: {}",
                numbered(report, name),
                explain(name)
            ),
        },
        Verdict::Holds if is_expected => Outcome::Failed {
            message: format!("{name} was expected to be violated, but it holds"),
            text: format!("{name} holds in an exhaustive search, but --expect-violation names it"),
        },
        Verdict::Holds | Verdict::Reached => Outcome::Passed { output: None },
        Verdict::NotReached => Outcome::Failed {
            message: format!("{name} is never reached"),
            text: format!(
                "{name} is never reached in an exhaustive search: a property it backs may be \
                 vacuous"
            ),
        },
        Verdict::Unknown => Outcome::Skipped {
            message: report.incomplete_sentence(),
        },
    }
}

/// The JUnit XML text of a check: one `testsuite` in a `testsuites` root, one `testcase` per
/// property. A violated property is a `failure` whose text is the numbered counterexample; a
/// `sometimes` property an exhaustive search never reached is a `failure`; every property a
/// cut-short search could not decide is `skipped`, with the INCOMPLETE sentence as message.
/// With `expected`, that property passes when violated and fails when it holds.
pub fn render(report: &Report, classname: &str, expected: Option<&str>) -> String {
    let outcomes: Vec<(&str, Outcome)> = report
        .properties
        .iter()
        .map(|p| (p.name, outcome(report, p.name, &p.verdict, expected)))
        .collect();
    let tests = outcomes.len().to_string();
    let failures = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Failed { .. }))
        .count()
        .to_string();
    let skipped = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Skipped { .. }))
        .count()
        .to_string();
    let time = format!("{:.3}", report.seconds);
    let counts = [
        ("tests", tests.as_str()),
        ("failures", failures.as_str()),
        ("errors", "0"),
        ("skipped", skipped.as_str()),
        ("time", time.as_str()),
    ];

    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    let io = "writing XML to memory cannot fail";
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))
        .expect(io);
    w.write_event(Event::Start(
        BytesStart::new("testsuites")
            .with_attributes([("name", "aurora-redo check")])
            .with_attributes(counts),
    ))
    .expect(io);
    w.write_event(Event::Start(
        BytesStart::new("testsuite")
            .with_attributes([("name", classname)])
            .with_attributes(counts),
    ))
    .expect(io);

    let config = report.config.to_string();
    let strategy = report.strategy.to_string();
    let states = report.states.to_string();
    let unique = report.unique_states.to_string();
    let verdict = report.overall(expected).to_string();
    let complete = report.complete.to_string();
    let mut properties = vec![
        ("configuration", config.as_str()),
        ("strategy", strategy.as_str()),
        ("states", states.as_str()),
        ("unique_states", unique.as_str()),
        ("complete", complete.as_str()),
        ("verdict", verdict.as_str()),
    ];
    if let Some(p) = expected {
        properties.push(("expect_violation", p));
    }
    w.write_event(Event::Start(BytesStart::new("properties")))
        .expect(io);
    for (name, value) in properties {
        w.write_event(Event::Empty(
            BytesStart::new("property").with_attributes([("name", name), ("value", value)]),
        ))
        .expect(io);
    }
    w.write_event(Event::End(BytesEnd::new("properties")))
        .expect(io);

    for (name, outcome) in &outcomes {
        let case = BytesStart::new("testcase").with_attributes([
            ("name", *name),
            ("classname", classname),
            ("time", "0"),
        ]);
        let element = |w: &mut Writer<Vec<u8>>, tag: &str, attrs: &[(&str, &str)], text: &str| {
            w.write_event(Event::Start(
                BytesStart::new(tag).with_attributes(attrs.iter().copied()),
            ))
            .expect(io);
            w.write_event(Event::Text(BytesText::new(text))).expect(io);
            w.write_event(Event::End(BytesEnd::new(tag))).expect(io);
        };
        match outcome {
            Outcome::Passed { output: None } => {
                w.write_event(Event::Empty(case)).expect(io);
                continue;
            }
            Outcome::Passed { output: Some(out) } => {
                w.write_event(Event::Start(case)).expect(io);
                element(&mut w, "system-out", &[], out);
            }
            Outcome::Failed { message, text } => {
                w.write_event(Event::Start(case)).expect(io);
                element(
                    &mut w,
                    "failure",
                    &[("message", message), ("type", "property")],
                    text,
                );
            }
            Outcome::Skipped { message } => {
                w.write_event(Event::Start(case)).expect(io);
                w.write_event(Event::Empty(
                    BytesStart::new("skipped").with_attributes([("message", message.as_str())]),
                ))
                .expect(io);
            }
        }
        w.write_event(Event::End(BytesEnd::new("testcase")))
            .expect(io);
    }
    w.write_event(Event::End(BytesEnd::new("testsuite")))
        .expect(io);
    w.write_event(Event::End(BytesEnd::new("testsuites")))
        .expect(io);
    let mut xml = String::from_utf8(w.into_inner()).expect("the XML is UTF-8");
    xml.push('\n');
    xml
}

/// Writes the JUnit XML of a check to `file`.
pub fn write(
    report: &Report,
    classname: &str,
    expected: Option<&str>,
    file: &Path,
) -> Result<(), String> {
    std::fs::write(file, render(report, classname, expected))
        .map_err(|e| format!("cannot write {}: {e}", file.display()))
}

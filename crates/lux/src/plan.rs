//! `lux plan`: the pipeline's topology (stages, topics, partitions, rules) as text, Graphviz DOT
//! or Mermaid, computed from the same configuration and wiring that `lux run` uses.

use crate::config::LuxConfig;
use crate::run::Topology;
use std::fmt::Write;

/// Output format of `lux plan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanFormat {
    Text,
    Dot,
    Mermaid,
}

pub fn render(config: &LuxConfig, format: PlanFormat) -> String {
    let topology = Topology::of(config);
    match format {
        PlanFormat::Text => text(config, &topology),
        PlanFormat::Dot => dot(&topology),
        PlanFormat::Mermaid => mermaid(&topology),
    }
}

fn text(config: &LuxConfig, t: &Topology) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "central log: embedded, data directory {}, {} partition(s) per topic ({} for the alarm stage's routed topic)",
        config.log.data_dir.display(),
        t.partitions,
        t.routed_partitions
    );
    let _ = writeln!(out, "\ntopics:");
    for topic in &t.topics {
        let _ = writeln!(out, "  {topic} ({} partitions)", t.partitions_of(topic));
    }
    let _ = writeln!(out, "\nstages:");
    for stage in &t.stages {
        let inputs = if stage.inputs.is_empty() { "(outside)".to_owned() } else { stage.inputs.join(", ") };
        let _ = writeln!(out, "  {:<10} {} -> {}   {}", stage.name, inputs, stage.outputs.join(", "), stage.detail);
    }
    let _ = writeln!(out, "\nalarm rules:");
    for rule in &config.alarm.rules {
        let _ = writeln!(
            out,
            "  {}: failures by [{}] in {} windows sliding by {}, {}, severity {}{}",
            rule.name,
            rule.group_by.join(", "),
            humantime::format_duration(rule.window),
            humantime::format_duration(rule.slide),
            match rule.level() {
                lux_alarm::Level::Count { threshold, clear } => format!("raise at >= {threshold}, clear under {clear}"),
                lux_alarm::Level::Ratio { threshold, clear, min_events } => format!(
                    "raise at a failure ratio >= {} over >= {min_events} events, clear under {}",
                    threshold.as_f64(),
                    clear.as_f64()
                ),
            },
            rule.severity,
            if rule.filter.is_empty() { String::new() } else { format!(", filter {:?}", rule.filter) }
        );
    }
    out
}

fn dot(t: &Topology) -> String {
    let mut out = String::from("digraph lux {\n  rankdir=LR;\n  node [fontname=\"Helvetica\"];\n");
    for topic in &t.topics {
        let _ = writeln!(
            out,
            "  \"topic:{topic}\" [label=\"[{topic}]\\n{} partitions\", shape=cylinder];",
            t.partitions_of(topic)
        );
    }
    for stage in &t.stages {
        let _ = writeln!(out, "  \"stage:{0}\" [label=\"{0}\", shape=box, style=rounded];", stage.name);
        for input in &stage.inputs {
            let _ = writeln!(out, "  \"topic:{input}\" -> \"stage:{}\";", stage.name);
        }
        for output in &stage.outputs {
            let _ = writeln!(out, "  \"stage:{}\" -> \"topic:{output}\";", stage.name);
        }
    }
    out.push_str("}\n");
    out
}

fn mermaid(t: &Topology) -> String {
    let id = |s: &str| s.replace(['.', '-'], "_");
    let mut out = String::from("flowchart LR\n");
    for topic in &t.topics {
        let _ = writeln!(out, "  t_{}[(\"{topic}\")]", id(topic));
    }
    for stage in &t.stages {
        let _ = writeln!(out, "  s_{}[\"{}\"]", id(&stage.name), stage.name);
        for input in &stage.inputs {
            let _ = writeln!(out, "  t_{} --> s_{}", id(input), id(&stage.name));
        }
        for output in &stage.outputs {
            let _ = writeln!(out, "  s_{} --> t_{}", id(&stage.name), id(output));
        }
    }
    out
}

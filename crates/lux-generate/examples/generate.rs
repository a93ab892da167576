//! `lux generate` without the `lux` binary: the generator's flags over the default
//! `[generator]` section (`cargo run --release -p lux-generate --example generate -- --help`).

use clap::Parser;

#[derive(Parser)]
#[command(about = "Generate the LUX demo operator's reference data and traffic")]
struct Cli {
    #[command(flatten)]
    args: lux_generate::GenerateArgs,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    lux_generate::run(lux_generate::GeneratorConfig::default(), &cli.args)
}

#!/usr/bin/env bash
# Rewrite the generated part of docs/cli.md (every subcommand's `--help`, read from the release
# binary) so that tests/cli_docs.rs passes again; the prose around it is left as it is.
# Run after changing a flag or a subcommand: scripts/cli_docs.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BOREX_WRITE_CLI_DOCS=1 cargo test --release --test cli_docs cli_md_is_every_commands_help -- --exact

# Lifeboat's two commands:
#   make drill   a DR drill on the local stack (the main job)
#   make test    every test
# Both install what they need on a fresh machine. Build output goes to a cache outside
# the clone (override with CARGO_TARGET_DIR).
SHELL := /bin/bash
export CARGO_TARGET_DIR ?= $(HOME)/.cache/lifeboat/target
export CARGO_TERM_COLOR ?= never

.PHONY: drill test lint venv stack-up stack-down coldstart sam-build

drill: venv
	infra/local/drill.sh

# Unit and property tests, then the integration tests against a private local stack,
# then the CloudFormation templates, then the drill itself on a stack of its own (a free
# port): the end-to-end test, which fails unless the DR story completes and the
# readiness report ends Normal, protected, with no critical failure.
test: lint venv
	infra/local/with-stack cargo test --workspace --locked
	.venv/bin/cfn-lint infra/*.yaml
	infra/local/sam.sh validate
	LIFEBOAT_LOCAL_PORT=$$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') \
	  infra/local/drill.sh

# Every member takes the workspace's lints; a new crate that forgets would go unlinted.
lint:
	@for m in shared tests functions/*; do \
	  grep -A1 -x '\[lints\]' "$$m/Cargo.toml" | grep -qx 'workspace = true' || \
	    { echo "$$m/Cargo.toml: add [lints] workspace = true (the workspace's lints)" >&2; exit 1; }; \
	done
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

venv:
	infra/local/venv.sh

# Whole-process cold start, first invocation and peak memory of each function (release
# build; figures recorded in the README).
coldstart: venv
	infra/local/coldstart.sh

# `sam validate --lint`, then `sam build` of every function (arm64 release builds).
sam-build:
	infra/local/sam.sh build

stack-up:
	infra/local/stack.sh up

stack-down:
	infra/local/stack.sh down

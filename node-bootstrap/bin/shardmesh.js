#!/usr/bin/env node
// Entry for the `shardmesh` bin: the CLI is TypeScript, run unbuilt by Node 22's type stripping.
import '../src/cli.ts'

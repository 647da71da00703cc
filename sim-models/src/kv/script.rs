//! Scripts: a Rust closure run atomically on the server, this model's EVAL.
//!
//! Redis runs a Lua script with no other command interleaved, and with the clock frozen
//! for its whole run. Here the script is a closure that receives a [`ScriptContext`] and
//! calls commands through it; the server runs it inside one engine step, which gives the
//! same atomicity. As in Redis 7, what a script wrote is replicated and persisted as the
//! commands it ran (effects replication), never as the script itself, and a script that
//! fails half way keeps the writes it already made.

use std::fmt;
use std::rc::Rc;

use serde::{Serialize, Serializer};

use super::command::{errors, Command, Reply};
use super::lua::{self, LuaVm};
use super::parse;
use super::state::Engine;

/// The signature of a script body: `(context, keys, args) -> reply`.
pub type ScriptBody = dyn Fn(&mut ScriptContext<'_>, &[String], &[String]) -> Reply;

/// A named script. The name stands in for the SHA of EVALSHA: it is what traces show
/// (a script serialises as its name).
///
/// The closure runs on the server node, inside the engine step. It should depend only on
/// its keys, arguments and `call` results, as a Lua script can: a closure that captured
/// client-side state would be a channel that real Redis does not have.
#[derive(Clone)]
pub struct Script {
    name: Rc<str>,
    body: Rc<ScriptBody>,
}

impl Script {
    pub fn new(
        name: &str,
        body: impl Fn(&mut ScriptContext<'_>, &[String], &[String]) -> Reply + 'static,
    ) -> Self {
        Script {
            name: Rc::from(name),
            body: Rc::new(body),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn run(
        &self,
        ctx: &mut ScriptContext<'_>,
        keys: &[String],
        args: &[String],
    ) -> Reply {
        (self.body)(ctx, keys, args)
    }
}

impl fmt::Debug for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Script({})", self.name())
    }
}

impl Serialize for Script {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl PartialEq for Script {
    /// Scripts compare by name, as scripts with one SHA are the same script.
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

/// What a running script sees: `call` runs one command against the dataset.
pub struct ScriptContext<'a> {
    pub(crate) engine: &'a mut Engine,
}

impl ScriptContext<'_> {
    /// Runs `cmd` and returns its reply; an error reply is returned, not raised (like
    /// `redis.pcall`), so the script decides whether to stop. Transactions, WATCH and
    /// nested scripts are refused as Redis refuses them, and blocking pops do not block.
    pub fn call(&mut self, cmd: Command) -> Reply {
        match cmd {
            Command::Multi
            | Command::Exec
            | Command::Discard
            | Command::Watch { .. }
            | Command::Unwatch
            | Command::Eval { .. }
            | Command::EvalLua { .. }
            | Command::EvalSha { .. }
            | Command::ScriptLoad { .. }
            | Command::ScriptExists { .. }
            | Command::ScriptFlush => Reply::error(errors::NOT_IN_SCRIPT),
            cmd => self.engine.run(&cmd),
        }
    }

    /// `call(Command::Get { key })`, reply for reply, with the key borrowed: a script
    /// that reads on every request (a stock check, an idempotency key) should not copy
    /// its keys into a command to do it.
    pub fn get(&mut self, key: &str) -> Reply {
        self.engine.run_with(|e| e.get(key).unwrap_or_else(|r| r))
    }
}

impl Engine {
    /// The server's Lua interpreter, made on first use.
    pub(crate) fn lua_vm(&mut self) -> &mut LuaVm {
        self.lua.get_or_insert_with(Box::default)
    }

    /// Runs a Lua script (`run` is EVAL or EVALSHA on the VM) with `redis.call` reaching
    /// this engine, inside the current step: no other command runs in between.
    pub(crate) fn eval_lua(
        &mut self,
        run: impl FnOnce(&mut LuaVm, &mut lua::Dispatch<'_>) -> Reply,
    ) -> Reply {
        // The VM leaves the engine while the script runs, so that the script's commands
        // can borrow the engine; it comes back afterwards with what it compiled.
        let mut vm = self.lua.take().unwrap_or_default();
        let mut dispatch = |argv: &[String]| -> Reply {
            match parse::parse(argv) {
                Ok(cmd) => ScriptContext { engine: self }.call(cmd),
                Err(e) => lua::script_error(e),
            }
        };
        let reply = run(&mut vm, &mut dispatch);
        self.lua = Some(vm);
        reply
    }
}

// A plugin module that fails when imported: its error is reported once, at `use:`.
throw new Error("this plugin module is broken on purpose");

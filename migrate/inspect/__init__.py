"""Read-only fact gathering: a server endpoint in, :class:`SourceFacts` / :class:`TargetFacts`
out; plus static analysis of Lua scripts (:mod:`migrate.inspect.lua`)."""

-- hostile: every route to string.dump, binary chunks and the real library tables
-- expect: escapes.lua: ok
local rc = require "reactcfg"
assert(("").dump == nil, "string.dump reachable through the string metatable")
assert(getmetatable("") == "string", "the string metatable is not protected")
assert(getmetatable("").__index == nil, "the string library through its metatable")
assert(string.dump == nil and not pcall(function() return load end))
assert(not pcall(rawset, rc, "file", print), "rawset on the vocabulary")
assert(not pcall(setmetatable, string, {}), "setmetatable on a library table")
assert(not pcall(function() string.find = nil end), "writing to a library table")
assert(not pcall(function() return require "luv" end), "luv without the embedder")
assert(not pcall(function() return require "string" end), "the real string table")
assert(not pcall(function() return _G.load end))
return rc.policy { components = {} }

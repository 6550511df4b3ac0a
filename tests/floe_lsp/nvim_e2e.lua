-- The driver of test_neovim.py, run in a real headless Neovim 0.11 with `-c 'luafile …'`
-- after Neovim has loaded the user's init.lua, which is the README's snippet verbatim
-- (and ~/.config/nvim/lsp/floe.lua, copied as the README says).
--
-- It runs one scenario, $FLOE_SCENARIO, and writes what it saw to $FLOE_OUT as JSON;
-- test_neovim.py asserts on that. A scenario is a function(t) in `scenarios` below:
-- `t.result` is the table that becomes the JSON, and `t` has the helpers (open a file
-- and wait for the server, read diagnostics of any file, request, touch files on disk).
-- A new check is a new scenario (or a new step in one) plus its assertions in the test.
local out_path = assert(os.getenv('FLOE_OUT'))

local t = { result = { steps = {}, log = {} } }

-- The server's window/logMessage lines (Neovim only writes them to lsp.log).
vim.lsp.handlers['window/logMessage'] = function(_, params)
  table.insert(t.result.log, params.message)
end

--- Record that a step was reached (the test reports the last one on failure).
function t.step(name)
  table.insert(t.result.steps, name)
end

--- Poll `pred` for up to `ms` milliseconds; true when it held.
function t.wait(ms, pred)
  return vim.wait(ms, pred, 20) == true
end

--- Edit `path`; its buffer number.
function t.open(path)
  vim.cmd.edit(vim.fn.fnameescape(path))
  return vim.api.nvim_get_current_buf()
end

--- The floe client attached to `bufnr`, waiting up to `ms` for it; nil if none attaches.
function t.client(bufnr, ms)
  local found
  t.wait(ms or 20000, function()
    found = vim.lsp.get_clients({ bufnr = bufnr, name = 'floe' })[1]
    return found ~= nil
  end)
  return found
end

--- The buffer of a file, loaded or not (Neovim keeps diagnostics of unopened files there).
function t.buffer(path)
  return vim.uri_to_bufnr(vim.uri_from_fname(path))
end

--- Diagnostics of a buffer or a file path, as plain tables.
function t.diagnostics(target)
  local bufnr = type(target) == 'number' and target or t.buffer(target)
  local out = {}
  for _, d in ipairs(vim.diagnostic.get(bufnr)) do
    table.insert(out, {
      code = d.code,
      lnum = d.lnum,
      col = d.col,
      end_lnum = d.end_lnum,
      end_col = d.end_col,
      source = d.source,
      message = d.message,
    })
  end
  return out
end

--- Whether some diagnostic of `target` satisfies `pred(d)` now.
function t.shows(target, pred)
  for _, d in ipairs(t.diagnostics(target)) do
    if pred(d) then
      return true
    end
  end
  return false
end

--- Wait up to `ms` until some diagnostic of `target` satisfies `pred(d)`.
function t.has_diagnostic(target, pred, ms)
  return t.wait(ms or 20000, function()
    return t.shows(target, pred)
  end)
end

--- A code + text matcher for has_diagnostic.
function t.code(code, text)
  return function(d)
    return d.code == code and (text == nil or d.message:find(text, 1, true) ~= nil)
  end
end

--- A synchronous request to the client's server; its result (nil on error or timeout).
function t.request(client, method, params, bufnr, ms)
  local response = client:request_sync(method, params, ms or 10000, bufnr)
  return response and response.result
end

--- Titles of the code lenses of a buffer.
function t.lenses(client, bufnr)
  local titles = {}
  local params = { textDocument = vim.lsp.util.make_text_document_params(bufnr) }
  for _, lens in ipairs(t.request(client, 'textDocument/codeLens', params, bufnr) or {}) do
    if lens.command then
      table.insert(titles, lens.command.title)
    end
  end
  return titles
end

--- Hover text at the end of the first line of `bufnr` starting with `prefix`.
function t.hover_at(client, bufnr, prefix)
  for i, line in ipairs(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)) do
    if line:sub(1, #prefix) == prefix then
      vim.api.nvim_win_set_cursor(0, { i, #prefix })
      local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
      local hover = t.request(client, 'textDocument/hover', params, bufnr)
      return hover and hover.contents.value or nil
    end
  end
end

--- Write a file on disk, not through a buffer (as git, a script or another editor would).
function t.write(path, text)
  vim.fn.mkdir(vim.fs.dirname(path), 'p')
  assert(vim.fn.writefile(vim.split(text, '\n', { plain = true }), path) == 0)
end

--- Delete a file or folder on disk.
function t.remove(path)
  assert(vim.fn.delete(path, 'rf') == 0)
end

--- Wait until the server says it watches `folder` itself.
function t.watching(folder, ms)
  return t.wait(ms or 20000, function()
    for _, line in ipairs(t.result.log) do
      if line:find('watching ' .. folder, 1, true) then
        return true
      end
    end
    return false
  end)
end

local scenarios = {}

-- The README's setup: the server starts from the venv named in `cmd`, diagnostics,
-- completion and hover of one pipeline.
function scenarios.readme(r)
  local bufnr = t.open(os.getenv('FLOE_FILE'))
  local client = t.client(bufnr)
  r.attached = client ~= nil
  if not client then
    return
  end
  t.step('attached')
  r.cmd = client.config.cmd
  r.offset_encoding = client.offset_encoding
  -- Introduce an unknown key; wait for the server's diagnostic.
  vim.api.nvim_buf_set_lines(bufnr, 2, 2, false, { 'storag: default' })
  t.step(t.has_diagnostic(bufnr, t.code('FLOE003')) and 'diagnostics' or 'no diagnostics')
  r.diagnostics = t.diagnostics(bufnr)
  -- Complete the profile name after `compute: `, then hover on it.
  for i, line in ipairs(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)) do
    if line:match('^compute: ') then
      vim.api.nvim_win_set_cursor(0, { i, #'compute: ' })
    end
  end
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
  local completion = t.request(client, 'textDocument/completion', params, bufnr) or {}
  r.completion = {}
  for _, item in ipairs(completion.items or completion) do
    table.insert(r.completion, { label = item.label, detail = item.detail })
  end
  t.step('completion')
  local hover = t.request(client, 'textDocument/hover', params, bufnr)
  r.hover = hover and hover.contents.value or nil
  t.step('hover')
end

-- A monorepo: pipelines/a, pipelines/b (compute: nowhere) and an unrelated infra/platform.yaml.
function scenarios.monorepo(r)
  local ws = os.getenv('FLOE_WORKSPACE')
  local files = {
    a = ws .. '/pipelines/a/floe.yaml',
    a_dev = ws .. '/pipelines/a/platform/dev/platform.yaml',
    b = ws .. '/pipelines/b/floe.yaml',
    infra = ws .. '/infra/platform.yaml',
  }
  local bufs = {}
  for _, name in ipairs({ 'a', 'a_dev', 'b', 'infra' }) do
    bufs[name] = t.open(files[name])
    if name ~= 'infra' then
      t.client(bufs[name])
    end
  end
  t.step('opened')
  r.attached = {}
  for name, bufnr in pairs(bufs) do
    r.attached[name] = #vim.lsp.get_clients({ bufnr = bufnr, name = 'floe' })
  end
  r.clients = #vim.lsp.get_clients({ name = 'floe' })
  local client = vim.lsp.get_clients({ bufnr = bufs.b, name = 'floe' })[1]
  if not client then
    return
  end
  r.root_dir = client.config.root_dir
  t.has_diagnostic(bufs.b, t.code('FLOE010'))
  t.step('diagnostics')
  vim.wait(500) -- anything for a or infra would have come with b's
  r.before = { a = t.diagnostics(bufs.a), b = t.diagnostics(bufs.b), infra = t.diagnostics(bufs.infra) }
  -- Break a, fix b, in their buffers: each change shows once and clears once.
  vim.api.nvim_buf_set_lines(bufs.a, 2, 2, false, { 'storag: default' })
  for i, line in ipairs(vim.api.nvim_buf_get_lines(bufs.b, 0, -1, false)) do
    if line == 'compute: nowhere' then
      vim.api.nvim_buf_set_lines(bufs.b, i - 1, i, false, { 'compute: default' })
    end
  end
  t.has_diagnostic(bufs.a, t.code('FLOE003'))
  t.wait(10000, function()
    return #t.diagnostics(bufs.b) == 0
  end)
  vim.wait(500)
  r.after = { a = t.diagnostics(bufs.a), b = t.diagnostics(bufs.b), infra = t.diagnostics(bufs.infra) }
  t.step('edited')
end

-- Changes on disk, outside the editor: Neovim on Linux does not watch files.
function scenarios.watch(r)
  local project = os.getenv('FLOE_PROJECT')
  local floe = project .. '/floe.yaml'
  local staging = project .. '/platform/staging/platform.yaml'
  local dev = project .. '/platform/dev/platform.yaml'
  local bufnr = t.open(floe)
  local client = t.client(bufnr)
  if not client then
    return
  end
  r.watching = t.watching(project)
  t.step('watching')
  r.lenses_before = t.lenses(client, bufnr)
  -- A new environment without the compute profile floe.yaml names.
  t.write(staging, os.getenv('FLOE_STAGING'))
  r.staging_added = t.has_diagnostic(bufnr, t.code('FLOE010', "'staging'"), 5000)
  r.lenses_added = t.lenses(client, bufnr)
  r.hover_added = t.hover_at(client, bufnr, 'compute: d')
  -- dev's compute profile renamed on disk.
  local text = table.concat(vim.fn.readfile(dev), '\n')
  t.write(dev, (text:gsub('\n  default:\n    type: duckdb', '\n  local:\n    type: duckdb')))
  r.dev_changed = t.has_diagnostic(bufnr, t.code('FLOE010', "'dev'"), 5000)
  -- The staging environment deleted.
  t.remove(vim.fs.dirname(staging))
  r.staging_removed = t.wait(5000, function()
    return not t.shows(bufnr, t.code('FLOE010', "'staging'"))
  end)
  r.lenses_removed = t.lenses(client, bufnr)
  r.hover_removed = t.hover_at(client, bufnr, 'compute: d')
  r.diagnostics = t.diagnostics(bufnr)
  t.step('done')
end

--- How long a `floe-runtime run` may take (a loaded machine runs dbt slowly).
local RUN_MS = tonumber(os.getenv('FLOE_RUN_MS') or '240000')

--- Diagnostics of the failing project's dbt files, by name.
local function dbt_diagnostics(project)
  local models = project .. '/dbt/models/'
  return {
    bad = t.diagnostics(models .. 'bad.sql'),
    props = t.diagnostics(models .. '_models.yml'),
    fast = t.diagnostics(models .. 'fast.sql'),
    nulls = t.diagnostics(models .. 'nulls.sql'),
  }
end

-- floe.run from the editor on the failing project (a model selecting a column that does
-- not exist, a not_null test on a null), then bad.sql opened: dbt's failure on its line.
function scenarios.run(r)
  local project = os.getenv('FLOE_PROJECT')
  local floe = project .. '/floe.yaml'
  local bufnr = t.open(floe)
  local client = t.client(bufnr)
  r.attached = client ~= nil
  if not client then
    return
  end
  t.step('attached')
  r.lenses_before = t.lenses(client, bufnr)
  local started = vim.uv.hrtime()
  local params = { command = 'floe.run', arguments = { vim.uri_from_fname(floe), 'dev' } }
  local response, err = client:request_sync('workspace/executeCommand', params, RUN_MS, bufnr)
  r.run_seconds = (vim.uv.hrtime() - started) / 1e9
  r.run = response and response.result
  r.run_error = err or (response and response.err and response.err.message)
  t.step('ran')
  vim.cmd.edit('dbt/models/bad.sql') -- relative to the project, Neovim's working folder
  local bad = vim.api.nvim_get_current_buf()
  r.bad_name = vim.api.nvim_buf_get_name(bad)
  r.shown = t.has_diagnostic(bad, t.code('FLOE050'), 5000)
  r.bad_buffer = t.diagnostics(bad)
  r.files = dbt_diagnostics(project)
  r.lenses_after = t.lenses(client, bufnr)
  t.step('done')
end

--- Run `floe-runtime run --env dev` in a Neovim :terminal; its exit code (nil on timeout).
local function terminal_run(project)
  vim.cmd('botright new')
  local code
  vim.fn.jobstart({ os.getenv('FLOE_RUNTIME'), 'run', '--env', 'dev' }, {
    term = true,
    cwd = project,
    on_exit = function(_, status)
      code = status
    end,
  })
  t.wait(RUN_MS, function()
    return code ~= nil
  end)
  vim.cmd('close!')
  return code
end

-- A run in a terminal while Neovim has bad.sql open: nothing goes through the editor, the
-- server sees the run's results file with its own watcher (Neovim on Linux does not watch).
-- Then the model is fixed and saved in Neovim and the next terminal run clears the failure.
function scenarios.terminal(r)
  local project = os.getenv('FLOE_PROJECT')
  local bufnr = t.open(project .. '/floe.yaml')
  local client = t.client(bufnr)
  if not client then
    return
  end
  r.watching = t.watching(project)
  t.step('watching')
  local bad = t.open(project .. '/dbt/models/bad.sql')
  r.floe_folder_before = vim.uv.fs_stat(project .. '/.floe') ~= nil
  r.failed_exit = terminal_run(project)
  t.step('failed run')
  r.shown = t.has_diagnostic(bad, t.code('FLOE050'), 5000)
  r.failed = dbt_diagnostics(project)
  -- Fixed in the editor and saved; the test on nulls fixed on disk.
  vim.api.nvim_set_current_buf(bad)
  vim.api.nvim_buf_set_lines(bad, 0, -1, false, { 'select id', "from {{ ref('fast') }}" })
  vim.cmd.write()
  t.write(project .. '/dbt/models/nulls.sql', 'select 1 as id\n')
  r.passed_exit = terminal_run(project)
  t.step('passing run')
  r.cleared = t.wait(5000, function()
    return #t.diagnostics(bad) == 0 and #t.diagnostics(project .. '/dbt/models/_models.yml') == 0
  end)
  r.passed = dbt_diagnostics(project)
  t.step('done')
end

local function finish()
  local f = assert(io.open(out_path, 'w'))
  f:write(vim.json.encode(t.result))
  f:close()
  vim.cmd('qa!')
end

local function run()
  local scenario = scenarios[os.getenv('FLOE_SCENARIO')]
  local ok, err = pcall(function()
    assert(scenario, 'unknown FLOE_SCENARIO ' .. tostring(os.getenv('FLOE_SCENARIO')))
    scenario(t.result)
  end)
  if not ok then
    t.result.error = tostring(err)
  end
  finish()
end

vim.api.nvim_create_autocmd('VimEnter', {
  callback = function()
    vim.schedule(run)
  end,
})

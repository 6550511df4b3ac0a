-- Driven by test_neovim.py: real Neovim 0.11, the shipped editors/neovim/floe.lua,
-- the server as `python -m floe_lsp`. Results go to $FLOE_OUT as JSON.
local out_path = os.getenv('FLOE_OUT')
local result = { steps = {} }

local function finish()
  local f = assert(io.open(out_path, 'w'))
  f:write(vim.json.encode(result))
  f:close()
  vim.cmd('qa!')
end

local function step(name) table.insert(result.steps, name) end

dofile(os.getenv('FLOE_SNIPPET'))
vim.lsp.config('floe', { cmd = { os.getenv('FLOE_PYTHON'), '-m', 'floe_lsp' } })
vim.lsp.enable('floe')

local function run()
  local ok, err = pcall(function()
    vim.cmd.edit(os.getenv('FLOE_FILE'))
    local bufnr = vim.api.nvim_get_current_buf()
    local attached = vim.wait(20000, function()
      return #vim.lsp.get_clients({ bufnr = bufnr, name = 'floe' }) > 0
    end, 20)
    result.attached = attached
    if not attached then return end
    step('attached')
    local client = vim.lsp.get_clients({ bufnr = bufnr, name = 'floe' })[1]
    result.offset_encoding = client.offset_encoding
    -- Introduce an unknown key; wait for the server's diagnostic.
    vim.api.nvim_buf_set_lines(bufnr, 2, 2, false, { 'storag: default' })
    local got = vim.wait(20000, function()
      for _, d in ipairs(vim.diagnostic.get(bufnr)) do
        if d.code == 'FLOE003' then return true end
      end
      return false
    end, 20)
    result.diagnostics = {}
    for _, d in ipairs(vim.diagnostic.get(bufnr)) do
      table.insert(result.diagnostics, { code = d.code, lnum = d.lnum, col = d.col, message = d.message })
    end
    step(got and 'diagnostics' or 'no diagnostics')
    -- Complete the profile name after `compute: `.
    local lines = vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)
    for i, line in ipairs(lines) do
      if line:match('^compute: ') then
        vim.api.nvim_win_set_cursor(0, { i, #'compute: ' })
      end
    end
    local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
    local response = client:request_sync('textDocument/completion', params, 10000, bufnr)
    result.completion = {}
    if response and response.result then
      local items = response.result.items or response.result
      for _, item in ipairs(items) do
        table.insert(result.completion, { label = item.label, detail = item.detail })
      end
    end
    step('completion')
    -- Hover on the same reference.
    local hover = client:request_sync('textDocument/hover', params, 10000, bufnr)
    if hover and hover.result then
      result.hover = hover.result.contents.value
    end
    step('hover')
  end)
  if not ok then result.error = tostring(err) end
  finish()
end

vim.api.nvim_create_autocmd('VimEnter', { callback = function() vim.schedule(run) end })

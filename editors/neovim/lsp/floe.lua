-- floe-runtime language server for Neovim >= 0.11 (vim.lsp.config).
--
-- Put this file in ~/.config/nvim/lsp/floe.lua (Neovim picks it up by name),
-- or dofile() it from init.lua, then call vim.lsp.enable('floe').
-- The server must be on PATH (`pip install floe-runtime` gives `floe-lsp`);
-- override `cmd` to use a virtualenv: { '/path/to/.venv/bin/floe-lsp' }.

local config = {
  cmd = { 'floe-lsp' },
  filetypes = { 'yaml' },
  -- A pipeline's root holds floe.yaml; platform files live below it.
  root_markers = { 'floe.yaml', '.git' },
  -- Attach only to floe's own files, not to every YAML file in the project.
  root_dir = function(bufnr, on_dir)
    local name = vim.fs.basename(vim.api.nvim_buf_get_name(bufnr))
    if name ~= 'floe.yaml' and name ~= 'platform.yaml' then
      return
    end
    local root = vim.fs.root(bufnr, { 'floe.yaml', '.git' })
    on_dir(root or vim.fs.dirname(vim.api.nvim_buf_get_name(bufnr)))
  end,
}

vim.lsp.config('floe', config)
return config

-- floe-runtime language server for Neovim >= 0.11.
--
-- Copy this file to ~/.config/nvim/lsp/floe.lua: Neovim reads lsp/<name>.lua from its
-- runtimepath and merges what init.lua sets with vim.lsp.config('floe', {...}) over
-- the table returned here (a `cmd` pointing into a virtualenv, say). This file only
-- returns that table; calling vim.lsp.config here would override the user's settings.

--- The pipeline a floe file belongs to: the folder holding floe.yaml. A platform.yaml
--- belongs to the floe.yaml beside it or two folders up (platform/<env>/platform.yaml),
--- as `floe-runtime` reads it; any other platform.yaml (infra/, a Helm chart) is not ours.
local function pipeline_root(path)
  local name = vim.fs.basename(path)
  local dir = vim.fs.dirname(path)
  if name == 'floe.yaml' then
    return dir
  end
  if name ~= 'platform.yaml' then
    return nil
  end
  if vim.uv.fs_stat(vim.fs.joinpath(dir, 'floe.yaml')) then
    return dir
  end
  local platform_dir = vim.fs.dirname(dir)
  if vim.fs.basename(platform_dir) == 'platform' then
    local root = vim.fs.dirname(platform_dir)
    if vim.uv.fs_stat(vim.fs.joinpath(root, 'floe.yaml')) then
      return root
    end
  end
  return nil
end

return {
  cmd = { 'floe-lsp' },
  filetypes = { 'yaml' },
  -- Attach to floe.yaml and to the platform.yaml files of a pipeline only; other YAML
  -- files are left to whatever YAML server is set up.
  root_dir = function(bufnr, on_dir)
    local root = pipeline_root(vim.fs.normalize(vim.api.nvim_buf_get_name(bufnr)))
    if root then
      on_dir(root)
    end
  end,
  -- One server for every pipeline of the session (a monorepo has several): it finds
  -- each pipeline from the files opened, so a second pipeline needs no second server.
  reuse_client = function(client, config)
    return client.name == config.name and not client:is_stopped()
  end,
}

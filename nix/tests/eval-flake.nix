# Evaluates flake.nix's outputs with stand-in inputs (nixpkgs, uv2nix, pyproject-nix and
# pyproject-build-systems cannot be fetched here): every package, check, app and dev shell of
# both systems must evaluate to a derivation. Catches typos, missing arguments, wrong attribute
# paths into the SDK pins or the lock, and an unfree package outside the allow-list.
#
#   nix-instantiate --eval --strict --json nix/tests/eval-flake.nix
let
  lib = import ./stub-nixpkgs/lib.nix;
  flake = import ../../flake.nix;
  inputs = import ./stub-inputs.nix { inherit lib; };
  nixpkgs = {
    outPath = ./stub-nixpkgs;
    inherit lib;
  };
  self = flake.outputs (inputs // { inherit self nixpkgs; }) // {
    outPath = ../..;
  };
  drvs = set: lib.mapAttrs (_: d: d.drvPath) set;
in
lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] (system: {
  packages = drvs self.packages.${system};
  checks = drvs self.checks.${system};
  devShells = drvs self.devShells.${system};
  apps = lib.mapAttrs (_: app: {
    inherit (app) type program;
    description = app.meta.description;
  }) self.apps.${system};
  overlay = builtins.isFunction self.overlays.default;
})

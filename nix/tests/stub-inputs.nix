# Stand-ins for the flake's uv2nix, pyproject-nix and pyproject-build-systems inputs. The
# workspace is read from the real pyproject.toml and uv.lock, so overrides of locked packages,
# dependency groups and extras are checked against what the lock really contains.
{ lib }:

let
  pyproject-nix = {
    build.packages =
      { stdenv, python }:
      lib.makeScope (self: {
        inherit python;
        pyprojectHook = stdenv.mkDerivation {
          pname = "pyproject-hook";
          version = "0";
        };
        resolveBuildSystem =
          spec:
          map (
            n: self.${n} or (builtins.throw "resolveBuildSystem: no build system package ${n}")
          ) (builtins.attrNames spec);
        mkVirtualEnv =
          name: deps:
          let
            checked = lib.mapAttrs (
              pkg: extras:
              let
                drv = self.${pkg} or (builtins.throw "mkVirtualEnv ${name}: no package ${pkg}");
                known = drv.passthru.extrasAndGroups or [ ];
              in
              map (
                e:
                if builtins.elem e known then
                  e
                else
                  builtins.throw "mkVirtualEnv ${name}: ${pkg} has no extra or group ${e} (has ${toString known})"
              ) extras
            ) deps;
          in
          stdenv.mkDerivation {
            inherit name;
            deps = builtins.toJSON checked;
            # Every locked package, so that every override is evaluated.
            packages = map (n: self.${n}) self.lockedNames;
          };
      });
  };

  uv2nix.lib.workspace.loadWorkspace =
    { workspaceRoot }:
    let
      lock = lib.importTOML (workspaceRoot + "/uv.lock");
      pyproject = lib.importTOML (workspaceRoot + "/pyproject.toml");
      project = pyproject.project;
      extrasAndGroups =
        builtins.attrNames (project.optional-dependencies or { })
        ++ builtins.attrNames (pyproject.dependency-groups or { });
      lockedNames = map (p: p.name) lock.package;
      mkPackage =
        final: p:
        final.python.stdenv or null; # unused
      packagesOverlay =
        final: prev:
        {
          inherit lockedNames;
        }
        // builtins.listToAttrs (
          map (p: {
            name = p.name;
            value = prev.pyprojectHook.overrideAttrs (old: {
              pname = p.name;
              inherit (p) version;
              nativeBuildInputs = [ final.pyprojectHook ];
              src = if p.name == project.name then workspaceRoot else "/nix/store/stub-${p.name}.whl";
              passthru = {
                extrasAndGroups = if p.name == project.name then extrasAndGroups else [ ];
              };
            });
          }) lock.package
        );
    in
    {
      mkPyprojectOverlay =
        { sourcePreference, ... }:
        assert lib.assertMsg (builtins.elem sourcePreference [
          "wheel"
          "sdist"
        ]) "mkPyprojectOverlay: sourcePreference ${sourcePreference}";
        packagesOverlay;
      mkEditablePyprojectOverlay =
        { root, ... }:
        final: prev: {
          ${project.name} = prev.${project.name}.overrideAttrs (old: {
            editableRoot = root;
          });
        };
      deps = {
        default = {
          ${project.name} = [ ];
        };
        all = {
          ${project.name} = extrasAndGroups;
        };
      };
    };

  pyproject-build-systems.overlays.default = final: prev: {
    hatchling = prev.pyprojectHook.overrideAttrs (_: {
      pname = "hatchling";
    });
    editables = prev.pyprojectHook.overrideAttrs (_: {
      pname = "editables";
    });
  };
in
{
  inherit pyproject-nix uv2nix pyproject-build-systems;
}

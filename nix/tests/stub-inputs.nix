# Stand-ins for the flake's uv2nix, pyproject-nix and pyproject-build-systems inputs. The
# workspace is read from the real pyproject.toml and uv.lock, so overrides of locked packages,
# dependency groups and extras are checked against what the lock really contains. Argument
# sets are closed where uv2nix's are (mkPyprojectOverlay, mkEditablePyprojectOverlay), the
# interpreter must satisfy uv.lock's requires-python as uv2nix asserts, and `deps.default` is
# uv2nix's: the project's `tool.uv.default-groups`.
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
          # The hooks run the interpreter (pyproject.nix's pythonInterpreter substitution).
          inherit python;
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
            passthru.spec = checked;
          };
      });
  };

  # uv.lock's requires-python, as uv2nix's overlay asserts it ("A,B" of ">=", ">", "<", "<=", "==").
  satisfies =
    version: spec:
    let
      clauses = map (c: builtins.replaceStrings [ " " ] [ "" ] c) (lib.filter builtins.isString (builtins.split "," spec));
      check =
        clause:
        let
          m = builtins.match "(>=|<=|==|!=|>|<|~=)([0-9.*]+)" clause;
          op = builtins.elemAt m 0;
          want = builtins.elemAt m 1;
          c = builtins.compareVersions version want;
        in
        if m == null then
          builtins.throw "stub uv2nix: cannot read requires-python clause ${clause}"
        else if op == ">=" || op == "~=" then
          c >= 0
        else if op == ">" then
          c > 0
        else if op == "<=" then
          c <= 0
        else if op == "<" then
          c < 0
        else if op == "==" then
          c == 0
        else
          c != 0;
    in
    builtins.all check clauses;

  uv2nix.lib.workspace.loadWorkspace =
    { workspaceRoot, ... }:
    let
      lock = lib.importTOML (workspaceRoot + "/uv.lock");
      pyproject = lib.importTOML (workspaceRoot + "/pyproject.toml");
      project = pyproject.project;
      extrasAndGroups =
        builtins.attrNames (project.optional-dependencies or { })
        ++ builtins.attrNames (pyproject.dependency-groups or { });
      lockedNames = map (p: p.name) lock.package;
      packagesOverlay =
        final: prev:
        assert lib.assertMsg (satisfies prev.python.version lock.requires-python)
          "stub uv2nix: the interpreter ${prev.python.name} does not satisfy uv.lock's requires-python ${lock.requires-python} (uv2nix asserts this)";
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
      deps = {
        default = {
          ${project.name} = pyproject.tool.uv.default-groups or [ ];
        };
        all = {
          ${project.name} = extrasAndGroups;
        };
        optionals = {
          ${project.name} = builtins.attrNames (project.optional-dependencies or { });
        };
        groups = {
          ${project.name} = builtins.attrNames (pyproject.dependency-groups or { });
        };
      };
    in
    {
      # uv2nix's formals (lib/workspace.nix): a closed set.
      mkPyprojectOverlay =
        {
          sourcePreference ? "sdist",
          environ ? { },
          dependencies ? deps.all,
        }:
        assert lib.assertMsg (builtins.elem sourcePreference [
          "wheel"
          "sdist"
        ]) "Unknown sourcePreference: ${sourcePreference}";
        packagesOverlay;
      mkEditablePyprojectOverlay =
        {
          root ? toString workspaceRoot,
          members ? [ project.name ],
        }:
        final: prev: {
          ${project.name} = prev.${project.name}.overrideAttrs (old: {
            editableRoot = root;
          });
        };
      inherit deps;
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

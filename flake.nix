{
  description = "synapse-mojo: Mojo-accelerated pattern search and message routing for Python agent systems";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

    pyproject-nix = {
      url = "github:pyproject-nix/pyproject.nix";
      inputs.nixpkgs.follows = "nixpkgs";
    };

    uv2nix = {
      url = "github:pyproject-nix/uv2nix";
      inputs.pyproject-nix.follows = "pyproject-nix";
      inputs.nixpkgs.follows = "nixpkgs";
    };

    pyproject-build-systems = {
      url = "github:pyproject-nix/build-system-pkgs";
      inputs.pyproject-nix.follows = "pyproject-nix";
      inputs.uv2nix.follows = "uv2nix";
      inputs.nixpkgs.follows = "nixpkgs";
    };
  };

  outputs =
    {
      self,
      nixpkgs,
      pyproject-nix,
      uv2nix,
      pyproject-build-systems,
      ...
    }:
    let
      inherit (nixpkgs) lib;

      # Modular publishes Linux wheels for these two (nix/mojo-sdk/sources.json).
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = lib.genAttrs systems;

      workspace = uv2nix.lib.workspace.loadWorkspace { workspaceRoot = ./.; };
      version = (lib.importTOML ./pyproject.toml).project.version;

      # The Mojo SDK is unfree (Modular's licence): allowed by name, nothing else.
      unfreeAllowed = [ "mojo-sdk" ];

      pkgsFor = forAllSystems (
        system:
        import nixpkgs {
          inherit system;
          overlays = [ self.overlays.default ];
          config.allowUnfreePredicate = pkg: builtins.elem (lib.getName pkg) unfreeAllowed;
        }
      );
    in
    {
      overlays.default = final: prev: {
        mojo-sdk = final.callPackage ./nix/mojo-sdk/package.nix { };

        synapse-mojo-kernels = final.callPackage ./nix/kernels.nix { inherit version; };

        synapse-mojo-python = final.callPackage ./nix/python.nix {
          inherit workspace pyproject-nix pyproject-build-systems;
          pkgs = final;
          # Explicitly: see nix/python.nix (pkgs.python is Python 2.7).
          pythonInterpreter = final.python313;
        };

        synapse-mojo = final.callPackage ./nix/package.nix {
          inherit version;
          inherit (final.synapse-mojo-python) venv;
          kernels = final.synapse-mojo-kernels;
        };
      };

      packages = forAllSystems (
        system:
        let
          pkgs = pkgsFor.${system};
        in
        {
          inherit (pkgs) mojo-sdk synapse-mojo;
          kernels = pkgs.synapse-mojo-kernels;
          default = pkgs.synapse-mojo;
        }
      );

      apps = forAllSystems (
        system:
        let
          pkgs = pkgsFor.${system};
          demo = pkgs.writeShellApplication {
            name = "synapse-mojo-demo";
            runtimeInputs = [ pkgs.synapse-mojo ];
            text = ''exec synapse-mojo demo "$@"'';
          };
        in
        {
          demo = {
            type = "app";
            program = lib.getExe demo;
            meta.description = "Pattern search end to end: Mojo vs NumPy vs pure Python on the embedded store";
          };
        }
      );

      devShells = forAllSystems (
        system:
        let
          pkgs = pkgsFor.${system};
          python = pkgs.synapse-mojo-python;
        in
        {
          # An editable virtualenv of the project (all dev and bench dependencies from uv.lock)
          # plus uv for changing the lock, the pinned Mojo SDK and a Redis server.
          default = pkgs.mkShell {
            packages = [
              python.editableVenv
              pkgs.uv
              pkgs.mojo-sdk
              pkgs.redis
            ];
            env = {
              UV_NO_SYNC = "1";
              UV_PYTHON = python.python.interpreter;
              UV_PYTHON_DOWNLOADS = "never";
              SYNAPSE_MOJO = lib.getExe pkgs.mojo-sdk;
            };
            shellHook = ''
              unset PYTHONPATH
              export REPO_ROOT=$(git rev-parse --show-toplevel)
            '';
          };
        }
      );

      checks = forAllSystems (
        system:
        let
          pkgs = pkgsFor.${system};
        in
        import ./nix/checks.nix {
          inherit (pkgs)
            lib
            runCommand
            runCommandCC
            python3
            mojo-sdk
            synapse-mojo
            ;
          inherit system;
          src = ./.;
          kernels = pkgs.synapse-mojo-kernels;
          inherit (pkgs.synapse-mojo-python) devVenv;
        }
        // {
          # The packages themselves build.
          inherit (self.packages.${system}) kernels synapse-mojo;
        }
      );
    };
}

# A small stand-in for nixpkgs' lib: the functions the flake uses, with the same semantics for
# the cases the flake exercises. Only for evaluating flake.nix offline (nix/tests/eval-flake.nix).
let
  lib = rec {
    inherit (builtins)
      attrNames
      attrValues
      concatStringsSep
      elem
      filter
      hasAttr
      head
      isAttrs
      isFunction
      isList
      isString
      length
      listToAttrs
      map
      mapAttrs
      removeAttrs
      ;

    id = x: x;
    optionals = cond: xs: if cond then xs else [ ];
    optionalString = cond: s: if cond then s else "";
    genAttrs = names: f: listToAttrs (map (n: { name = n; value = f n; }) names);
    filterAttrs =
      pred: set:
      listToAttrs (
        builtins.concatMap (n: if pred n set.${n} then [ { name = n; value = set.${n}; } ] else [ ]) (
          attrNames set
        )
      );
    importJSON = path: builtins.fromJSON (builtins.readFile path);
    importTOML = path: builtins.fromTOML (builtins.readFile path);
    assertMsg = pred: msg: pred || builtins.throw msg;
    escapeShellArg = arg: "'${builtins.replaceStrings [ "'" ] [ "'\\''" ] (toString arg)}'";

    getName = drv: drv.pname or (builtins.parseDrvName drv.name).name;
    getExe =
      drv:
      if drv ? meta.mainProgram then
        "${drv}/bin/${drv.meta.mainProgram}"
      else
        builtins.throw "getExe: ${drv.name} has no meta.mainProgram";
    getExe' = drv: program: "${drv}/bin/${program}";
    makeBinPath = pkgs: concatStringsSep ":" (map (p: "${p}/bin") pkgs);

    # fix-point extensions (overlays)
    fix = f: let x = f x; in x;
    extends = overlay: f: final: let prev = f final; in prev // overlay final prev;
    composeExtensions =
      f: g: final: prev:
      let
        fApplied = f final prev;
        prev' = prev // fApplied;
      in
      fApplied // g final prev';
    composeManyExtensions = builtins.foldl' composeExtensions (final: prev: { });

    # A scope with overrideScope, like lib.makeScope.
    makeScope =
      f:
      let
        self = f self // {
          overrideScope = g: makeScope (extends g f);
        };
      in
      self;

    fileset = {
      unions = paths: { _fileset = paths; };
      toSource =
        { root, fileset }:
        let
          paths = if fileset ? _fileset then fileset._fileset else [ fileset ];
          check = map (
            p: if builtins.pathExists p then p else builtins.throw "fileset: ${toString p} does not exist"
          ) paths;
        in
        builtins.deepSeq check root;
    };

    licenses = {
      asl20 = {
        shortName = "asl20";
        free = true;
      };
      unfree = {
        shortName = "unfree";
        free = false;
      };
    };
    sourceTypes = {
      binaryBytecode = "binaryBytecode";
      binaryNativeCode = "binaryNativeCode";
      fromSource = "fromSource";
    };
  };
in
lib

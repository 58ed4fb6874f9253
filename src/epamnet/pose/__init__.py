"""2D pose extraction with mmpose (HRNet-W32 top-down, COCO-17).

``compat`` covers mmpose's two import gaps on the compile-free install, ``estimator``
builds the network offline and loads weights safely, ``boxes`` provides person boxes
(from skeletons, the full frame or an mmdet detector), ``extract`` runs batched crops
over sharded videos and writes mmaction2 skeleton annotations. Importing this package
does not import mmpose; the modules import it when a model is built.
"""

//! Finding the images in folders: which files lamp reads (by extension), a folder's own or its
//! whole tree, hidden files and links to folders left out, formats lamp does not decode named.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

const IMAGE_EXTENSIONS: [&str; 8] = ["png", "jpg", "jpeg", "bmp", "tif", "tiff", "gif", "webp"];

/// Image formats lamp does not decode: left out of a folder's images, with a warning that names
/// them (an image the user meant to give must not vanish without a word).
const UNREAD_EXTENSIONS: [&str; 13] = [
    "avif", "heic", "heif", "jxl", "jp2", "tga", "ico", "pnm", "ppm", "pgm", "exr", "hdr", "dng",
];

/// Whether `p` is named as an image lamp reads (by its extension).
pub fn is_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_lowercase().as_str()))
}

/// The image files directly in `dir`, sorted by name.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>> {
    list(dir, false, false)
}

/// The image files in `dir` and its subfolders (symbolic links to folders are not followed, so
/// a loop cannot trap the walk), sorted by path. Hidden files and folders (named `.…`: macOS's
/// `._x.png` companions, `.git`) are not images of the set.
/// With `skip_bad`, a subfolder that cannot be listed is passed over with a warning (as an
/// unreadable image is), not an error.
pub fn walk_images(dir: &Path, skip_bad: bool) -> Result<Vec<PathBuf>> {
    list(dir, true, skip_bad)
}

fn list(dir: &Path, recursive: bool, skip_bad: bool) -> Result<Vec<PathBuf>> {
    if !dir.exists() {
        return Err(Error::file(dir, "no such file or directory"));
    }
    if !dir.is_dir() {
        return Err(Error::file(dir, "not a directory"));
    }
    let mut v = Vec::new();
    let mut others = 0;
    let mut unread = Vec::new();
    let mut links = Vec::new();
    // Subfolders passed over (not recursive): named in the error when no image is found.
    let mut skipped_folders = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    // Subfolders walked (recursive).
    let mut searched = 0;
    while let Some(folder) = folders.pop() {
        searched += usize::from(folder != dir);
        let rd = match std::fs::read_dir(&folder) {
            Ok(rd) => rd,
            Err(e) if skip_bad && folder != dir => {
                let f = crate::fsutil::path_text(&folder);
                crate::sayln!("lamp: warning: skipped the folder {f}: cannot list: {e}");
                continue;
            }
            Err(e) => return Err(Error::file(&folder, format!("cannot list: {e}"))),
        };
        for entry in rd {
            let p = entry
                .map_err(|e| Error::file(&folder, format!("cannot list: {e}")))?
                .path();
            let hidden = p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            let extension = p.extension().map(|e| e.to_string_lossy().to_lowercase());
            if hidden {
                others += 1;
            } else if is_image(&p) && !p.is_dir() {
                // Not only regular files: a FIFO named x.png is reported by name when read.
                v.push(p);
            } else if recursive && p.is_dir() && !p.is_symlink() {
                folders.push(p);
            } else if recursive && p.is_dir() {
                // A link to a folder: not followed (a loop could trap the walk), but said.
                links.push(p);
            } else if p.is_dir() {
                skipped_folders.push(
                    p.file_name()
                        .map_or(String::new(), |n| format!("{}/", n.to_string_lossy())),
                );
                others += 1;
            } else {
                if extension.is_some_and(|e| UNREAD_EXTENSIONS.contains(&e.as_str())) {
                    unread.push(p);
                }
                others += 1;
            }
        }
    }
    if let Some(first) = unread.iter().min() {
        crate::sayln!(
            "lamp: warning: {}: left out {} of a format lamp does not read ({}{}): convert {} \
             to PNG to use {4}",
            crate::fsutil::path_text(dir),
            crate::error::count(unread.len() as u64, "file"),
            if unread.len() == 1 { "" } else { "the first " },
            crate::fsutil::path_text(first),
            if unread.len() == 1 { "it" } else { "them" },
        );
    }
    if let Some(first) = links.iter().min() {
        crate::sayln!(
            "lamp: warning: {}: left out {} (the first {}): lamp does not follow links to \
             folders; name the folder they link to to read it",
            crate::fsutil::path_text(dir),
            crate::error::count(links.len() as u64, "link to a folder"),
            crate::fsutil::path_text(first),
        );
    }
    if v.is_empty() {
        let what = match (others, searched) {
            (0, 0) => "empty directory".to_string(),
            (0, _) => "no images in it or its subfolders".to_string(),
            (n, 0) => format!("no images among {n} entries"),
            (n, _) => format!("no images among {n} entries, its subfolders' included"),
        };
        skipped_folders.sort();
        let hint = match skipped_folders.len() {
            0 => String::new(),
            k => format!(
                "; its subfolder{} {} {} not searched: name the folder of images itself{}",
                if k == 1 { "" } else { "s" },
                skipped_folders
                    .iter()
                    .take(4)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
                if k == 1 { "is" } else { "are" },
                if skipped_folders.iter().any(|f| f == "good/") {
                    " (for an MVTec AD layout, the category's root)"
                } else {
                    ""
                }
            ),
        };
        return Err(Error::file(
            dir,
            format!("{what} (looked for {}){hint}", IMAGE_EXTENSIONS.join(", ")),
        ));
    }
    v.sort();
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::images::load_image;

    /// A folder's images: WebP read as PNG is (lossless: the same values); hidden files and
    /// formats lamp does not decode left out; the walk goes into subfolders but not hidden ones.
    #[test]
    fn a_folder_lists_the_images_lamp_reads() {
        let d = std::env::temp_dir().join(format!("lamp-list-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::fs::create_dir_all(d.join(".hidden")).unwrap();
        let mut r = crate::rng::SplitMix64::new(9);
        let img = image::RgbImage::from_fn(20, 20, |_, _| {
            image::Rgb([0, 1, 2].map(|_| (r.next_f64() * 255.0) as u8))
        });
        img.save(d.join("a.png")).unwrap();
        img.save(d.join("sub/b.webp")).unwrap();
        img.save(d.join(".hidden/c.png")).unwrap();
        img.save(d.join("._a.png")).unwrap();
        std::fs::write(d.join("photo.heic"), b"not read").unwrap();
        let found = walk_images(&d, false).unwrap();
        assert_eq!(found, vec![d.join("a.png"), d.join("sub/b.webp")]);
        let png = load_image(&found[0], 3, 20).unwrap();
        let webp = load_image(&found[1], 3, 20).unwrap();
        assert_eq!(png, webp);
        assert!(png.iter().any(|&v| v > 0.1) && png.iter().any(|&v| v < 0.9));
        // A subfolder that cannot be listed: an error, or passed over with `skip_bad`. (Only
        // where permissions bind: root lists it anyway.)
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let locked = d.join("locked");
            std::fs::create_dir(&locked).unwrap();
            std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
            if std::fs::read_dir(&locked).is_err() {
                let e = walk_images(&d, false).unwrap_err();
                assert!(e.to_string().contains("cannot list"), "{e}");
                assert_eq!(walk_images(&d, true).unwrap(), found);
            }
            std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::remove_dir_all(&d).unwrap();
    }
}

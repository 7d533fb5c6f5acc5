/**
 * A title as a person reads it. Titles come from the first words of a
 * question or from a model, and either may carry Markdown (`**bold**`,
 * `# heading`, `` `code` ``): shown raw in the sidebar and the header those
 * marks are noise, so they are dropped for display (the stored title is kept).
 */
export function plainTitle(title: string): string {
  return title
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1") // [text](url), ![alt](src)
    .replace(/^\s{0,3}(#{1,6}\s+|>\s*|[-*+]\s+|\d+[.)]\s+)/, "") // a heading, quote or list mark at the start
    .replace(/(\*\*|__|~~)(?=\S)(.+?)(?<=\S)\1/g, "$2")
    .replace(/(^|[^\w*])([*_])(?=\S)(.+?)(?<=\S)\2(?![\w*])/g, "$1$3")
    .replace(/`+([^`]+)`+/g, "$1")
    .replace(/\s+/g, " ")
    .trim();
}
